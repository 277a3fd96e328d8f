package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// Widths of the table's free-text columns, in characters; longer values
// are cut with an ellipsis.
const (
	maxHostname   = 24
	maxCategories = 32
	maxNames      = 40
)

// ANSI SGR sequences of the table. Every one is five bytes and the reset
// four, so that coloured cells of a column are all the same number of
// bytes wider and tabwriter still aligns them.
var statusColor = map[Status]string{
	NeverRemoved:     "\x1b[31m", // red
	StillPhoningHome: "\x1b[33m", // yellow
	Removed:          "\x1b[32m", // green
	NoDeadline:       "\x1b[90m", // grey
}

const (
	sgrHeader = "\x1b[01m" // bold
	sgrReset  = "\x1b[0m"
)

// WriteTable writes the report as aligned text for a terminal, followed
// by a line of counts per status. Strings are made safe for a terminal:
// control bytes (ESC, newline, tab…), DEL, invalid UTF-8 and unprintable
// characters are written as \xHH, and overlong cells are cut with "…".
// Statuses are coloured when Options.Color is set.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	color := func(sgr, s string) string {
		if !r.Options.Color {
			return s
		}
		return sgr + s + sgrReset
	}
	fmt.Fprintf(tw, "%s\tIP\tHOSTNAME\tDEADLINE\tFIRST SEEN\tLAST SEEN\tCONTACTS\tSENT\tRECEIVED\tCATEGORIES\tNAMES\n", color(sgrHeader, "STATUS"))
	for i := range r.Hosts {
		h := &r.Hosts[i]
		cats := make([]string, 0, len(h.Categories))
		for _, c := range categories(&h.Host) {
			cats = append(cats, string(c))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
			color(statusColor[h.Status], string(h.Status)),
			terminal(h.IP.String(), 0), orDash(terminal(h.Hostname, maxHostname)), orDash(deadlineText(h.Deadline)),
			minute(h.FirstSeen), minute(h.LastSeen), h.Contacts,
			humanBytes(h.Traffic.BytesOut), humanBytes(h.Traffic.BytesIn),
			orDash(terminal(strings.Join(cats, ","), maxCategories)), orDash(namesText(&h.Host, maxNames)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	filter := ""
	if f := r.Options.filterText(); f != "" {
		filter = "; filter: " + terminal(f, 0)
	}
	_, err := fmt.Fprintf(w, "\n%s (as of %s UTC, quiet period %s%s)\n", r.summary(), minute(r.Options.Now), span(r.Options.Quiet), filter)
	return err
}

// namesText is the name of the last contact (else the first name), made
// safe for a terminal and cut to fit limit with the count of the host's
// other names.
func namesText(h *inventory.Host, limit int) string {
	total := uint64(len(h.Names)) + h.NamesCut
	name := h.Last.Name
	if name == "" && len(h.Names) > 0 {
		name = h.Names[0]
	}
	if name == "" {
		return ""
	}
	if !slices.Contains(h.Names, name) {
		total++
	}
	if total <= 1 {
		return terminal(name, limit)
	}
	more := fmt.Sprintf(" (+%d)", total-1)
	return terminal(name, limit-len(more)) + more
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// terminal makes s safe to print on a terminal: printable characters are
// kept, every other byte (C0 and C1 controls, ESC, DEL, invalid UTF-8,
// format characters such as bidirectional overrides) is written as \xHH.
// When the result is longer than limit characters (limit > 0) it is cut
// between escapes and ends with "…".
func terminal(s string, limit int) string {
	var b strings.Builder
	width, cut := 0, false
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		tok := s[i : i+n]
		if r < 0x20 || r == 0x7f || r == utf8.RuneError && n == 1 || r >= 0x80 && !unicode.IsPrint(r) {
			tok = hexBytes(tok)
		}
		w := utf8.RuneCountInString(tok)
		if limit > 0 && width+w > limit-1 && (width+w > limit || i+n < len(s)) {
			cut = true
			break
		}
		b.WriteString(tok)
		width += w
		i += n
	}
	if cut {
		b.WriteString("…")
	}
	return b.String()
}

// hexBytes writes every byte of s as \xHH.
func hexBytes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, `\x%02x`, s[i])
	}
	return b.String()
}

// WriteCSV writes the report as CSV (RFC 4180, through encoding/csv) with
// a header row; times are RFC 3339 in UTC, lists are space-separated.
//
// Every cell is made safe for spreadsheets and terminals: control bytes
// and DEL are written as \xHH (so no cell holds a newline, tab or ESC), and
// a cell starting with '=', '+', '-' or '@' gets a leading single quote so
// that a spreadsheet shows it as text instead of evaluating it as a
// formula (CSV injection; a tab or CR, the other triggers, cannot start a
// cell after the first step).
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	header := []string{"ip", "mac", "hostname", "owner", "site", "observer", "status", "after_deadline", "detail", "deadline",
		"first_seen", "last_seen", "contacts", "bytes_out", "bytes_in", "packets_out", "packets_in", "flows",
		"categories", "names", "names_cut", "rules", "profiles",
		"last_time", "last_protocol", "last_name", "last_destination", "last_rule", "last_reason"}
	if err := cw.Write(header); err != nil {
		return err
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	for i := range r.Hosts {
		h := &r.Hosts[i]
		cats := make([]string, 0, len(h.Categories))
		for _, c := range categories(&h.Host) {
			cats = append(cats, string(c))
		}
		dest := ""
		if h.Last.Destination.IsValid() {
			dest = h.Last.Destination.String()
		}
		t := &h.Traffic
		rec := []string{h.IP.String(), h.MAC, h.Hostname, h.Owner, h.Site, h.Observer, string(h.Status), strconv.FormatBool(h.AfterDeadline), h.Detail, stamp(h.Deadline),
			stamp(h.FirstSeen), stamp(h.LastSeen), u(h.Contacts), u(t.BytesOut), u(t.BytesIn), u(t.PacketsOut), u(t.PacketsIn), u(t.Flows),
			strings.Join(cats, " "), strings.Join(h.Names, " "), u(h.NamesCut), strings.Join(h.Rules, " "), strings.Join(h.Profiles, " "),
			stamp(h.Last.Time), h.Last.Protocol, h.Last.Name, dest, h.Last.RuleID, h.Last.Reason}
		for j, c := range rec {
			rec[j] = csvCell(c)
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvCell escapes control bytes as \xHH and neutralises a leading formula
// character with a single quote.
func csvCell(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\x%02x`, c)
			} else {
				b.WriteByte(c)
			}
		}
		s = b.String()
	}
	if s != "" && strings.IndexByte("=+-@", s[0]) >= 0 {
		s = "'" + s
	}
	return s
}
