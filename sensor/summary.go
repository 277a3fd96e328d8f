package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/phonehome-sensor/phonehome/sensor/internal/decode"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
	"github.com/phonehome-sensor/phonehome/sensor/internal/pipeline"
)

// printSummary writes the one-screen summary of a run to w (stderr).
func printSummary(w io.Writer, a *args, st *pipeline.Stats, inv *inventory.Inventory) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, v ...any) { fmt.Fprintf(tw, format+"\n", v...) }
	fmt.Fprintln(tw, "phonehome summary")
	p("  files\t%d read in %s", len(a.files), st.Elapsed.Round(time.Millisecond))
	if !st.First.IsZero() {
		p("  packet time\t%s → %s", st.First.Format(time.RFC3339), st.Last.Format(time.RFC3339))
	}
	p("  packets\t%d (%s)", st.Packets, humanBytes(st.Bytes))
	d := &st.Decode
	p("  decoded\t%d TCP/UDP, %d IP fragments, %d other IP, %d not IP, %d unknown link type", d.Decoded, d.Fragments, d.NotTCPUDP, d.NotIP, d.UnknownLink)
	p("  decode errors\t%s", decodeErrors(d))
	if d.Fragments > 0 {
		g := &d.Defrag
		p("  IP fragments\t%d: %d datagrams reassembled, %d timed out, %d evicted, %d invalid, %d overlapping", d.Fragments, g.Reassembled, g.Timeouts, g.Evicted, g.Invalid, g.Overlaps)
	}
	p("  flows\t%d created, peak %d, %d refused (table full), %d evicted to make room", st.Flows.Created, st.Flows.Peak, st.Flows.Refused, st.Flows.Evicted)
	p("  DNS messages\t%d (%d malformed, %d partial)", st.DNSMessages, st.DNSMalformed, st.DNSPartial)
	p("  ClientHellos\t%d (%d gathered from several segments; %d incomplete: %d after a gap or out-of-order segment, %d over the buffer cap; %d malformed)",
		st.ClientHellos, st.HelloReassembled, st.HelloIncomplete, st.HelloGaps, st.HelloTooBig, st.HelloMalformed)
	p("  QUIC\t%d client Initial datagrams, %d ClientHellos (%d datagrams undecryptable, %d malformed)", st.QUICInitials, st.QUICHellos, st.QUICUndecryptable, st.QUICMalformed)
	p("  HTTP requests\t%d", st.HTTPRequests)
	p("  names unseen\tTLS %s; QUIC %s", unseenText(&st.UnseenTLS), unseenText(&st.UnseenQUIC))
	if st.ECHOuter+st.ECHUnverified > 0 {
		p("  ECH\t%d hellos behind a known public name (destination hidden), %d with the extension and another name (GREASE: name matched)", st.ECHOuter, st.ECHUnverified)
	}
	if st.GatherRefused+st.StreamStartLost+st.GatherTimeouts+st.GatherReclaimed+st.GatherEvicted > 0 {
		p("  reassembly\t%d refused (gathering memory spent), %d streams whose start was never captured; gathers ended incomplete: %d timed out, %d reclaimed (all busy), %d by flow eviction",
			st.GatherRefused, st.StreamStartLost, st.GatherTimeouts, st.GatherReclaimed, st.GatherEvicted)
	}
	is := inv.Stats()
	p("  learned addresses\t%d remembered from matched DNS answers (%d learned, %d expired, %d evicted at the cap)", st.LearnedLen, st.LearnedAdded, st.LearnedExpired, st.LearnedEvicted)
	p("  GeoIP\t%d look-ups (once per flow, when rules need them)%s", st.GeoLookups, a.geoNote)
	p("  flow contacts\t%d flows matched by destination alone (address, port, or an address learned from a matched DNS answer)", st.FlowContacts)
	p("  matches\t%d contacts, %d alerts (%d repeats suppressed)", is.Contacts, st.Alerts, is.Suppressed)
	if is.ExternalClients > 0 {
		p("  outside home nets\t%d contacts from clients outside --home-net (alerted, not inventoried)", is.ExternalClients)
	}
	hosts := inv.Hosts()
	p("  hosts\t%d phoning home, %d contacts after their removal deadline", len(hosts), is.Overdue)
	if st.Store != "" {
		p("  inventory\t%s", st.Store)
	}
	for _, o := range st.Outputs {
		line := fmt.Sprintf("%d sent, %d retried, %d dropped (queue full), %d failed", o.Sent, o.Retried, o.Dropped, o.Failed)
		if o.Failed > 0 && o.LastError != "" {
			line += "; last error: " + o.LastError
		}
		p("  output %s\t%s", o.Name, line)
	}
	if st.QueueDrops > 0 {
		p("  queue drops\t%d", st.QueueDrops)
	}
	liveSummary(tw, a)
	tw.Flush()
	if len(hosts) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tMAC\tFIRST SEEN\tLAST SEEN\tCONTACTS\tSENT\tRECEIVED\tCATEGORIES\tNAMES")
	for i, h := range hosts {
		if i == a.summaryHosts {
			fmt.Fprintf(tw, "… and %d more hosts\t\t\t\t\t\t\t\t\n", len(hosts)-i)
			break
		}
		cats := make([]string, 0, len(h.Categories))
		for _, c := range h.SortedCategories() {
			cats = append(cats, string(c))
		}
		names := h.Names
		more := ""
		if len(names) > 3 {
			more = fmt.Sprintf(" +%d", len(names)-3)
			names = names[:3]
		}
		mac := h.MAC
		if mac == "" {
			mac = "-"
		}
		host := h.IP.String()
		if h.Hostname != "" {
			host += " (" + h.Hostname + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s%s\n", host, mac, h.FirstSeen.Format(time.RFC3339), h.LastSeen.Format(time.RFC3339),
			h.Contacts, humanBytes(h.Traffic.BytesOut), humanBytes(h.Traffic.BytesIn), strings.Join(cats, ","), strings.Join(names, ","), more)
	}
	tw.Flush()
}

// unseenText lists the non-zero reasons of u, "none" when all are zero.
func unseenText(u *pipeline.UnseenCounts) string {
	var parts []string
	for i, n := range u {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, pipeline.Unseen(i)))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func decodeErrors(d *decode.Stats) string {
	if d.ErrorCount() == 0 {
		return "none"
	}
	var parts []string
	for i, n := range d.Errors {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", decode.LayerName(i), n))
		}
	}
	return strings.Join(parts, ", ")
}

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
