package report

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// DefaultTitle is the report's title when Options.Title is empty.
const DefaultTitle = "phonehome compliance report"

// Options set what a report shows and how.
type Options struct {
	// Now is the instant statuses are judged at (zero: time.Now()).
	Now time.Time
	// Quiet is how long a host must have been silent to count as
	// removed (zero: DefaultQuiet).
	Quiet time.Duration
	// Filter keeps hosts whose last contact is at or after Since, that
	// contacted Category, and whose Site is Site; zero fields keep all.
	// Since also starts the timeline.
	Filter inventory.Filter
	// Status keeps hosts with one of these statuses (empty: all).
	Status []Status
	// Title heads the report (empty: DefaultTitle).
	Title string
	// Observer names the sensor or fleet the report covers (empty: the
	// observers recorded with the hosts).
	Observer string
	// Generated is when the report was made (zero: Now).
	Generated time.Time
	// Color turns on ANSI colours in WriteTable. The caller decides,
	// from whether the output is a terminal.
	Color bool
}

// Row is one host of the report.
type Row struct {
	inventory.Host
	Status Status
	// AfterDeadline: the last contact came at or after the deadline.
	AfterDeadline bool
	// Detail explains the status in words, with dates.
	Detail string
}

// Report is a built report, ready to be written in any format.
type Report struct {
	// Hosts passing the filters, newest last contact first.
	Hosts []Row
	// Daily counts of the hosts shown, of the filtered category, from
	// the day of Filter.Since on; ordered by day, category and address.
	Daily []inventory.DayCount
	// Counts are the shown hosts per status.
	Counts  map[Status]int
	Options Options
}

// Build filters and classifies hosts and sorts them by last contact, the
// newest first (then by address). daily holds the contacts per host, day
// and category for the timeline; it may be nil.
func Build(hosts []inventory.Host, daily []inventory.DayCount, o Options) *Report {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Quiet <= 0 {
		o.Quiet = DefaultQuiet
	}
	if o.Generated.IsZero() {
		o.Generated = o.Now
	}
	if o.Title == "" {
		o.Title = DefaultTitle
	}
	r := &Report{Counts: map[Status]int{}, Options: o}
	f := o.Filter
	shown := map[netip.Addr]bool{}
	for i := range hosts {
		h := &hosts[i]
		if !f.Since.IsZero() && h.LastSeen.Before(f.Since) ||
			f.Category != "" && h.Categories[f.Category] == nil ||
			f.Site != "" && h.Site != f.Site {
			continue
		}
		st := Classify(h, o.Now, o.Quiet)
		if len(o.Status) > 0 && !slices.Contains(o.Status, st) {
			continue
		}
		row := Row{Host: *h, Status: st, AfterDeadline: afterDeadline(h)}
		row.Detail = detail(&row, o.Now, o.Quiet)
		r.Hosts = append(r.Hosts, row)
		r.Counts[st]++
		shown[h.IP] = true
	}
	slices.SortFunc(r.Hosts, func(a, b Row) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		return a.IP.Compare(b.IP)
	})
	since := f.Since.UTC().Truncate(24 * time.Hour)
	for _, d := range daily {
		if shown[d.IP] && (f.Category == "" || d.Category == f.Category) && (f.Since.IsZero() || !d.Day.Before(since)) {
			r.Daily = append(r.Daily, d)
		}
	}
	slices.SortFunc(r.Daily, func(a, b inventory.DayCount) int {
		return cmp.Or(a.Day.Compare(b.Day), cmp.Compare(a.Category, b.Category), a.IP.Compare(b.IP))
	})
	return r
}

// detail explains a row's status in words.
func detail(r *Row, now time.Time, quiet time.Duration) string {
	d, last := r.Deadline, r.LastSeen
	switch r.Status {
	case NoDeadline:
		return "no removal deadline set"
	case NeverRemoved:
		return fmt.Sprintf("seen since %s, before the deadline; last contact %s after it", day(r.FirstSeen), span(last.Sub(d)))
	case StillPhoningHome:
		if d.After(now) {
			return fmt.Sprintf("deadline in %s", span(d.Sub(now)))
		}
		return fmt.Sprintf("first seen %s after the deadline; last contact %s", span(r.FirstSeen.Sub(d)), day(last))
	}
	if last.Before(d) {
		if d.After(now) {
			return fmt.Sprintf("silent since %s, for %s (quiet period %s); deadline in %s", day(last), span(now.Sub(last)), span(quiet), span(d.Sub(now)))
		}
		return fmt.Sprintf("last contact %s, %s before the deadline", day(last), span(d.Sub(last)))
	}
	return fmt.Sprintf("silent since %s (%s after the deadline), for %s", day(last), span(last.Sub(d)), span(now.Sub(last)))
}

// span writes a duration in whole days, the unit of deadlines.
func span(d time.Duration) string {
	switch n := d / (24 * time.Hour); {
	case n < 1:
		return "less than a day"
	case n == 1:
		return "1 day"
	default:
		return fmt.Sprintf("%d days", n)
	}
}

// day writes t's UTC date.
func day(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.DateOnly)
}

// minute writes t in UTC to the minute.
func minute(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// stamp writes t in UTC as RFC 3339 (empty for the zero time).
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// humanBytes writes n with binary prefixes.
func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// categories returns a host's categories in the fixed documentation order
// (unknown ones last, by name).
func categories(h *inventory.Host) []rules.Category {
	out := h.SortedCategories()
	slices.SortStableFunc(out, func(a, b rules.Category) int { return cmp.Compare(catIndex(a), catIndex(b)) })
	return out
}

// catIndex is c's place in rules.Categories (len for unknown ones).
func catIndex(c rules.Category) int {
	all := rules.Categories()
	if i := slices.Index(all, c); i >= 0 {
		return i
	}
	return len(all)
}

// evidence writes the last contact in one line: protocol, name,
// destination and rule.
func evidence(e *inventory.Evidence) string {
	if e.Time.IsZero() {
		return ""
	}
	var b strings.Builder
	b.WriteString(e.Protocol)
	if e.Name != "" {
		b.WriteString(" " + e.Name)
	}
	if e.Destination.IsValid() {
		b.WriteString(" → " + e.Destination.String())
	}
	if e.RuleID != "" {
		b.WriteString(" (" + e.RuleID + ")")
	}
	return strings.TrimSpace(b.String())
}

// filterText describes the filters in words ("" when none).
func (o *Options) filterText() string {
	var p []string
	if !o.Filter.Since.IsZero() {
		p = append(p, "last contact since "+minute(o.Filter.Since))
	}
	if o.Filter.Category != "" {
		p = append(p, "category "+string(o.Filter.Category))
	}
	if o.Filter.Site != "" {
		p = append(p, "site "+o.Filter.Site)
	}
	if len(o.Status) > 0 {
		s := make([]string, len(o.Status))
		for i, st := range o.Status {
			s[i] = string(st)
		}
		p = append(p, "status "+strings.Join(s, ", "))
	}
	return strings.Join(p, "; ")
}

// observers names the sensors the report covers: Options.Observer, or
// those recorded with the hosts (at most five, then a count).
func (r *Report) observers() string {
	if r.Options.Observer != "" {
		return r.Options.Observer
	}
	var seen []string
	for i := range r.Hosts {
		if o := r.Hosts[i].Observer; o != "" && !slices.Contains(seen, o) {
			seen = append(seen, o)
		}
	}
	slices.Sort(seen)
	if len(seen) > 5 {
		return fmt.Sprintf("%s and %d more", strings.Join(seen[:5], ", "), len(seen)-5)
	}
	return strings.Join(seen, ", ")
}

// deadlines lists the distinct deadlines of the shown hosts with how many
// hosts have each, earliest first, then the hosts without one.
func (r *Report) deadlines() []string {
	count := map[time.Time]int{}
	var keys []time.Time
	none := 0
	for i := range r.Hosts {
		d := r.Hosts[i].Deadline
		if d.IsZero() {
			none++
			continue
		}
		d = d.UTC()
		if count[d] == 0 {
			keys = append(keys, d)
		}
		count[d]++
	}
	slices.SortFunc(keys, time.Time.Compare)
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s (%s)", deadlineText(k), hosts(count[k])))
	}
	if none > 0 {
		out = append(out, fmt.Sprintf("none (%s)", hosts(none)))
	}
	return out
}

// deadlineText writes a deadline as a date when it is UTC midnight, else
// to the minute.
func deadlineText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	if t.UTC().Truncate(24 * time.Hour).Equal(t) {
		return day(t)
	}
	return minute(t)
}

func hosts(n int) string {
	if n == 1 {
		return "1 host"
	}
	return fmt.Sprintf("%d hosts", n)
}

// summary writes the counts per status in one line.
func (r *Report) summary() string {
	var p []string
	for _, s := range Statuses() {
		p = append(p, fmt.Sprintf("%d %s", r.Counts[s], s))
	}
	return fmt.Sprintf("%s: %s", hosts(len(r.Hosts)), strings.Join(p, ", "))
}
