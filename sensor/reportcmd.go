package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/report"
)

// reportArgs are the flags of `phonehome report`.
type reportArgs struct {
	format   string
	since    string
	category string
	status   []string
	site     string
	quiet    time.Duration
	out      string
	now      string // for reproducible reports and tests
}

func addReportFlags(c *kingpin.CmdClause, r *reportArgs) {
	c.Flag("format", "Output format.").Default("table").EnumVar(&r.format, "table", "csv", "json", "html")
	c.Flag("since", "Only hosts with a contact on or after this date (YYYY-MM-DD).").StringVar(&r.since)
	c.Flag("category", "Only hosts that contacted this category.").StringVar(&r.category)
	c.Flag("status", "Only hosts of this status; repeatable: still-phoning-home, never-removed, removed, no-deadline.").EnumsVar(&r.status,
		string(report.StillPhoningHome), string(report.NeverRemoved), string(report.Removed), string(report.NoDeadline))
	c.Flag("site", "Only hosts of this site (asset file).").StringVar(&r.site)
	c.Flag("removal.quiet", "A host silent this long counts as removed.").Default("14d").DurationVar(&r.quiet)
	c.Flag("out", "Write the report to this file instead of stdout.").Short('o').StringVar(&r.out)
	c.Flag("now", "Classify as of this time (RFC 3339 or YYYY-MM-DD); default: now.").Hidden().StringVar(&r.now)
}

// reportCmd prints the compliance report from the inventory store.
func reportCmd(a *args, stdout io.Writer) error {
	r := &a.report
	o := report.Options{Quiet: r.quiet, Now: time.Now().UTC()}
	if r.now != "" {
		t, err := inventory.ParseDate(r.now)
		if err != nil {
			return usage("--now: %v", err)
		}
		o.Now, o.Generated = t, t
	}
	if r.since != "" {
		t, err := inventory.ParseDate(r.since)
		if err != nil {
			return usage("--since: %v", err)
		}
		o.Filter.Since = t
	}
	if r.category != "" {
		c := rules.Category(r.category)
		if !c.Valid() {
			return usage("--category %q: not a category (%v)", r.category, rules.Categories())
		}
		o.Filter.Category = c
	}
	o.Filter.Site = r.site
	for _, s := range r.status {
		o.Status = append(o.Status, report.Status(s))
	}
	if a.storage.dsn == "" && a.storage.path == "" {
		return usage("report: no inventory: give --storage.path or --storage.dsn")
	}
	if a.storage.dsn == "" {
		if _, err := os.Stat(a.storage.path); err != nil {
			return usageError{fmt.Errorf("inventory %s: %w (run `phonehome run` first)", a.storage.path, err)}
		}
	}
	ctx := context.Background()
	st, err := openStore(ctx, &a.storage)
	if err != nil {
		return usageError{err}
	}
	defer st.Close()
	// The store filters what it can; Build applies every filter again
	// and the status, which depends on the time of the report.
	hosts, err := st.Hosts(ctx, o.Filter)
	if err != nil {
		return fmt.Errorf("inventory %s: %w", a.storage.where(), err)
	}
	daily, err := st.Daily(ctx, o.Filter)
	if err != nil {
		return fmt.Errorf("inventory %s: %w", a.storage.where(), err)
	}
	o.Observer = a.observerName
	rep := report.Build(hosts, daily, o)
	w := stdout
	if r.out != "" {
		f, err := os.Create(r.out)
		if err != nil {
			return usageError{err}
		}
		defer f.Close()
		w = f
	} else if f, ok := stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			rep.Options.Color = true // colour only on a terminal
		}
	}
	switch r.format {
	case "csv":
		err = rep.WriteCSV(w)
	case "json":
		err = rep.WriteJSON(w)
	case "html":
		err = rep.WriteHTML(w)
	default:
		err = rep.WriteTable(w)
	}
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}
