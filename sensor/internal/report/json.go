package report

import (
	"encoding/json"
	"io"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
)

// jsonHost is one host of `report --format json` (DESIGN.md). Fields may
// be added, never renamed or removed. Times are RFC 3339 in UTC; lists
// are never null.
type jsonHost struct {
	IP            string         `json:"ip"`
	MAC           string         `json:"mac"`
	Hostname      string         `json:"hostname"`
	Owner         string         `json:"owner"`
	Site          string         `json:"site"`
	Observer      string         `json:"observer"`
	Status        Status         `json:"status"`
	AfterDeadline bool           `json:"after_deadline"` // the last contact came at or after the deadline
	Detail        string         `json:"detail"`
	Deadline      *time.Time     `json:"deadline"` // null: none
	FirstSeen     time.Time      `json:"first_seen"`
	LastSeen      time.Time      `json:"last_seen"`
	Contacts      uint64         `json:"contacts"`
	BytesOut      uint64         `json:"bytes_out"`
	BytesIn       uint64         `json:"bytes_in"`
	PacketsOut    uint64         `json:"packets_out"`
	PacketsIn     uint64         `json:"packets_in"`
	Flows         uint64         `json:"flows"`
	Categories    []jsonCategory `json:"categories"`
	Names         []string       `json:"names"`
	NamesCut      uint64         `json:"names_cut"` // names not kept (bounded per host)
	Rules         []string       `json:"rules"`
	Profiles      []string       `json:"profiles"`
	LastEvidence  *jsonEvidence  `json:"last_evidence"` // null: none recorded
}

type jsonCategory struct {
	Name     rules.Category `json:"name"`
	First    time.Time      `json:"first"`
	Last     time.Time      `json:"last"`
	Contacts uint64         `json:"contacts"`
	BytesOut uint64         `json:"bytes_out"`
	BytesIn  uint64         `json:"bytes_in"`
}

type jsonEvidence struct {
	Time        time.Time `json:"time"`
	Protocol    string    `json:"protocol"`
	Name        string    `json:"name"`
	Destination string    `json:"destination"`
	Rule        string    `json:"rule"`
	Reason      string    `json:"reason"`
}

// WriteJSON writes the report as the JSON array of host objects of
// DESIGN.md, in the report's order, indented. encoding/json escapes every
// string, including '<', '>' and '&' (as \u003c…), so the output is also
// safe to embed in HTML.
func (r *Report) WriteJSON(w io.Writer) error {
	out := make([]jsonHost, 0, len(r.Hosts))
	for i := range r.Hosts {
		h := &r.Hosts[i]
		j := jsonHost{
			IP: h.IP.String(), MAC: h.MAC, Hostname: h.Hostname, Owner: h.Owner, Site: h.Site, Observer: h.Observer,
			Status: h.Status, AfterDeadline: h.AfterDeadline, Detail: h.Detail,
			FirstSeen: h.FirstSeen.UTC(), LastSeen: h.LastSeen.UTC(), Contacts: h.Contacts,
			BytesOut: h.Traffic.BytesOut, BytesIn: h.Traffic.BytesIn, PacketsOut: h.Traffic.PacketsOut, PacketsIn: h.Traffic.PacketsIn,
			Flows: h.Traffic.Flows, Categories: []jsonCategory{}, Names: nonNil(h.Names), NamesCut: h.NamesCut,
			Rules: nonNil(h.Rules), Profiles: nonNil(h.Profiles),
		}
		if !h.Deadline.IsZero() {
			d := h.Deadline.UTC()
			j.Deadline = &d
		}
		for _, c := range categories(&h.Host) {
			k := h.Categories[c]
			j.Categories = append(j.Categories, jsonCategory{Name: c, First: k.First.UTC(), Last: k.Last.UTC(), Contacts: k.Count,
				BytesOut: k.Traffic.BytesOut, BytesIn: k.Traffic.BytesIn})
		}
		if e := &h.Last; !e.Time.IsZero() {
			j.LastEvidence = &jsonEvidence{Time: e.Time.UTC(), Protocol: e.Protocol, Name: e.Name, Rule: e.RuleID, Reason: e.Reason}
			if e.Destination.IsValid() {
				j.LastEvidence.Destination = e.Destination.String()
			}
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
