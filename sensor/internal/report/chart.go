package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
)

// The timeline is drawn server-side as inline SVG (readable without
// JavaScript): stacked bars of contacts per bucket (a day; a week or a
// month when the span is long) and category, a y axis with round ticks,
// dates under the bars and a dashed line at each removal deadline in view.

// Geometry of the SVG, in viewBox units.
const (
	chartW, chartH = 1000, 300
	plotLeft       = 64
	plotRight      = chartW - 16
	plotTop        = 24
	plotBottom     = chartH - 48
	maxXLabels     = 8
	maxDeadlines   = 4
)

type chart struct {
	W, H           int
	X0, X1, Y0, Y1 float64 // plot area: left, right, top, bottom
	Unit           string  // "day", "week" or "month"
	From, To       string
	Total          uint64
	Bars           []bar
	YTicks         []tick
	XLabels        []tick
	Deadlines      []tick
	Legend         []legendItem
}

type bar struct {
	X, W  float64
	Title string
	Segs  []seg
}

type seg struct {
	Y, H  float64
	Class string
}

type tick struct {
	X, Y   float64
	Label  string
	Anchor string // text-anchor of a deadline label
}

type legendItem struct {
	Name  string
	Class string
	Total uint64
}

// catClass is the CSS class of a category's colour: c0…c9 in the order
// of rules.Categories, c10 for any other.
func catClass(c rules.Category) string { return fmt.Sprintf("c%d", catIndex(c)) }

// buckets of a timeline: their unit, start of the first, and a step.
type bucketing struct {
	unit  string
	start func(time.Time) time.Time
	next  func(time.Time) time.Time
	label func(time.Time) string
}

func bucketingFor(days int) bucketing {
	switch {
	case days <= 120:
		return bucketing{"day",
			func(t time.Time) time.Time { return t.Truncate(24 * time.Hour) },
			func(t time.Time) time.Time { return t.AddDate(0, 0, 1) },
			func(t time.Time) string { return t.Format(time.DateOnly) }}
	case days <= 2*365:
		return bucketing{"week",
			func(t time.Time) time.Time {
				t = t.Truncate(24 * time.Hour)
				return t.AddDate(0, 0, -(int(t.Weekday())+6)%7) // back to Monday
			},
			func(t time.Time) time.Time { return t.AddDate(0, 0, 7) },
			func(t time.Time) string { return "week of " + t.Format(time.DateOnly) }}
	}
	return bucketing{"month",
		func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) },
		func(t time.Time) time.Time { return t.AddDate(0, 1, 0) },
		func(t time.Time) string { return t.Format("2006-01") }}
}

// buildChart lays out the timeline of r.Daily; nil when there is nothing
// to draw.
func (r *Report) buildChart() *chart {
	var first, last time.Time
	var total uint64
	for _, d := range r.Daily {
		t := d.Day.UTC()
		if first.IsZero() || t.Before(first) {
			first = t
		}
		if t.After(last) {
			last = t
		}
		total += d.Contacts
	}
	if total == 0 {
		return nil
	}
	b := bucketingFor(int(last.Sub(first)/(24*time.Hour)) + 1)
	var starts []time.Time
	for t := b.start(first); !t.After(last); t = b.next(t) {
		starts = append(starts, t)
	}
	index := func(t time.Time) int {
		i, found := slices.BinarySearchFunc(starts, t, time.Time.Compare)
		if !found {
			i--
		}
		return i
	}
	type cell struct {
		cat rules.Category
		n   uint64
	}
	counts := make([][]cell, len(starts))
	perCat := map[rules.Category]uint64{}
	for _, d := range r.Daily {
		if d.Contacts == 0 {
			continue
		}
		i := index(d.Day.UTC())
		perCat[d.Category] += d.Contacts
		j := slices.IndexFunc(counts[i], func(c cell) bool { return c.cat == d.Category })
		if j < 0 {
			counts[i] = append(counts[i], cell{cat: d.Category})
			j = len(counts[i]) - 1
		}
		counts[i][j].n += d.Contacts
	}
	var peak uint64
	for _, cs := range counts {
		var s uint64
		for _, c := range cs {
			s += c.n
		}
		peak = max(peak, s)
	}
	step := niceStep(float64(peak) / 4)
	top := math.Ceil(float64(peak)/step) * step
	c := &chart{W: chartW, H: chartH, X0: plotLeft, X1: plotRight, Y0: plotTop, Y1: plotBottom, Unit: b.unit,
		From: day(first), To: day(last), Total: total}
	plotH := c.Y1 - c.Y0
	y := func(v float64) float64 { return c.Y1 - v/top*plotH }
	for v := 0.0; v <= top+step/2; v += step {
		c.YTicks = append(c.YTicks, tick{X: c.X0, Y: y(v), Label: fmt.Sprintf("%g", v)})
	}
	bw := (c.X1 - c.X0) / float64(len(starts))
	gap := 0.0
	if bw > 4 {
		gap = math.Min(2, bw*0.2)
	}
	every := (len(starts) + maxXLabels - 1) / maxXLabels
	for i, s := range starts {
		cs := counts[i]
		slices.SortFunc(cs, func(a, b cell) int { return catIndex(a.cat) - catIndex(b.cat) })
		x := c.X0 + float64(i)*bw
		br := bar{X: x + gap/2, W: bw - gap}
		var sum uint64
		var parts []string
		for _, k := range cs {
			h := float64(k.n) / top * plotH
			br.Segs = append(br.Segs, seg{Y: y(float64(sum)) - h, H: h, Class: catClass(k.cat)})
			sum += k.n
			parts = append(parts, fmt.Sprintf("%s %d", k.cat, k.n))
		}
		br.Title = fmt.Sprintf("%s: %d contacts", b.label(s), sum)
		if len(parts) > 0 {
			br.Title += " (" + strings.Join(parts, ", ") + ")"
		}
		c.Bars = append(c.Bars, br)
		if i%every == 0 {
			l := s.Format(time.DateOnly)
			if b.unit == "month" {
				l = s.Format("2006-01")
			}
			c.XLabels = append(c.XLabels, tick{X: x + bw/2, Y: c.Y1 + 18, Label: l})
		}
	}
	end := b.next(starts[len(starts)-1])
	for _, d := range r.deadlineTimes() {
		if d.Before(starts[0]) || !d.Before(end) || len(c.Deadlines) == maxDeadlines {
			continue
		}
		i := index(d)
		frac := float64(d.Sub(starts[i])) / float64(b.next(starts[i]).Sub(starts[i]))
		x := c.X0 + (float64(i)+frac)*bw
		t := tick{X: x, Y: c.Y0 - 8, Label: "deadline " + deadlineText(d), Anchor: "start"}
		if x > c.X1-150 {
			t.Anchor = "end"
		}
		c.Deadlines = append(c.Deadlines, t)
	}
	for _, k := range rules.Categories() {
		if n := perCat[k]; n > 0 {
			c.Legend = append(c.Legend, legendItem{Name: string(k), Class: catClass(k), Total: n})
		}
	}
	var other []string
	for k := range perCat {
		if catIndex(k) == len(rules.Categories()) {
			other = append(other, string(k))
		}
	}
	slices.Sort(other)
	for _, k := range other {
		c.Legend = append(c.Legend, legendItem{Name: k, Class: catClass(rules.Category(k)), Total: perCat[rules.Category(k)]})
	}
	return c
}

// deadlineTimes returns the distinct deadlines of the shown hosts in
// order.
func (r *Report) deadlineTimes() []time.Time {
	var out []time.Time
	for i := range r.Hosts {
		if d := r.Hosts[i].Deadline.UTC(); !r.Hosts[i].Deadline.IsZero() && !slices.ContainsFunc(out, d.Equal) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten (at least 1).
func niceStep(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
