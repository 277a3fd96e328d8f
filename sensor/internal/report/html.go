package report

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"time"
)

// The page's only style sheet and script, inlined into every report and
// allowed by their hashes in the Content-Security-Policy.
var (
	//go:embed report.css
	pageCSS string
	//go:embed report.js
	pageJS string
	//go:embed report.html.tmpl
	pageTemplate string
)

// csp forbids every load: no network, no other script or style than the
// two inlined blocks (by hash), no frames, forms or base URL.
var csp = fmt.Sprintf("default-src 'none'; style-src '%s'; script-src '%s'; img-src 'none'; base-uri 'none'; form-action 'none'",
	hash(pageCSS), hash(pageJS))

func hash(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(h[:])
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"f": func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
}).Parse(pageTemplate))

// statusText describes the statuses for the summary cards.
func statusText(s Status, quiet string) string {
	switch s {
	case NeverRemoved:
		return "Deadline passed; seen before it and still phoning home after it, last within " + quiet + "."
	case StillPhoningHome:
		return "Contacted within " + quiet + "; first seen after its deadline, or the deadline is still ahead."
	case Removed:
		return "No contact since the deadline, or none for " + quiet + "."
	}
	return "No removal deadline set for the host."
}

type htmlData struct {
	Title, Generated, Now, Observer, Filter, Quiet string
	Deadlines                                      []string
	Total                                          int
	Cards                                          []htmlCard
	Chart                                          *chart
	Rows                                           []htmlRow
	CSP                                            string
	CSS                                            template.CSS
	JS                                             template.JS
}

type htmlCard struct {
	Status Status
	N      int
	Text   string
}

type htmlRow struct {
	Index                   int
	Status                  Status
	Severity                int // 3 for never-removed … 0 for no-deadline
	Detail                  string
	IP, IPKey               string
	Hostname, MAC           string
	Owner, Site, Observer   string
	Deadline                string
	DeadlineKey             int64
	FirstDay, FirstTime     string
	LastDay, LastTime       string
	FirstKey, LastKey       int64
	Contacts                uint64
	Out, In                 string
	OutKey, InKey           uint64
	Categories              []htmlCategory
	Names, MoreNames        []string
	NamesCut                uint64
	Evidence, EvidenceTitle string
	EvidenceTime            string
}

type htmlCategory struct {
	Name, Class, Title string
}

// namesShown is how many names a row shows before "n more".
const namesShown = 3

// clock writes t's UTC time of day to the minute.
func clock(t time.Time) string { return t.UTC().Format("15:04") }

// printable writes control bytes and other unprintable characters of s as
// \xHH, as on the terminal, so that the page shows what was there instead of
// nothing; html/template then escapes the result for its context.
func printable(s string) string { return terminal(s, 0) }

// WriteHTML writes the report as one self-contained HTML page: no
// external asset, the style sheet and a small sorting script inline, a
// Content-Security-Policy that forbids every load, and the timeline as
// inline SVG so that all but sorting works without JavaScript. Every
// string goes through html/template's contextual escaping.
func (r *Report) WriteHTML(w io.Writer) error {
	quiet := span(r.Options.Quiet)
	d := htmlData{
		Title: printable(r.Options.Title), Generated: minute(r.Options.Generated) + " UTC", Now: minute(r.Options.Now) + " UTC",
		Observer: printable(r.observers()), Filter: printable(r.Options.filterText()), Quiet: quiet, Deadlines: r.deadlines(),
		Total: len(r.Hosts), Chart: r.buildChart(),
		CSP: csp, CSS: template.CSS(pageCSS), JS: template.JS(pageJS),
	}
	for _, s := range Statuses() {
		d.Cards = append(d.Cards, htmlCard{Status: s, N: r.Counts[s], Text: statusText(s, quiet)})
	}
	for i := range r.Hosts {
		h := &r.Hosts[i]
		ip16 := h.IP.As16()
		row := htmlRow{
			Index: i, Status: h.Status, Severity: 3 - h.Status.rank(), Detail: h.Detail,
			IP: h.IP.String(), IPKey: hex.EncodeToString(ip16[:]), Hostname: printable(h.Hostname), MAC: printable(h.MAC),
			Owner: printable(h.Owner), Site: printable(h.Site), Observer: printable(h.Observer),
			Deadline: deadlineText(h.Deadline), FirstDay: day(h.FirstSeen), FirstTime: clock(h.FirstSeen), LastDay: day(h.LastSeen), LastTime: clock(h.LastSeen),
			FirstKey: h.FirstSeen.Unix(), LastKey: h.LastSeen.Unix(), Contacts: h.Contacts,
			Out: humanBytes(h.Traffic.BytesOut), In: humanBytes(h.Traffic.BytesIn), OutKey: h.Traffic.BytesOut, InKey: h.Traffic.BytesIn,
			NamesCut: h.NamesCut, Evidence: printable(evidence(&h.Last)), EvidenceTime: minute(h.Last.Time), EvidenceTitle: printable(h.Last.Reason),
		}
		if !h.Deadline.IsZero() {
			row.DeadlineKey = h.Deadline.Unix()
		}
		for _, c := range categories(&h.Host) {
			k := h.Categories[c]
			row.Categories = append(row.Categories, htmlCategory{Name: string(c), Class: catClass(c),
				Title: fmt.Sprintf("%d contacts, %s to %s; %s sent, %s received", k.Count, minute(k.First), minute(k.Last),
					humanBytes(k.Traffic.BytesOut), humanBytes(k.Traffic.BytesIn))})
		}
		names := make([]string, len(h.Names))
		for j, n := range h.Names {
			names[j] = printable(n)
		}
		row.Names = names
		if len(names) > namesShown+1 {
			row.Names, row.MoreNames = names[:namesShown], names[namesShown:]
		}
		d.Rows = append(d.Rows, row)
	}
	return page.Execute(w, d)
}
