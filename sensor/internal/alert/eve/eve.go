// Package eve writes events as Suricata EVE JSON, so that a SOC whose
// pipeline already reads Suricata's eve.json (Filebeat's suricata module,
// Splunk's TA, Security Onion, Tenzir, jq scripts) takes phonehome alerts
// without a new parser.
//
// The layout follows Suricata 7's EVE schema: the common header
// (timestamp, flow_id, event_type, the 5-tuple, proto, app_proto, host,
// community_id, ether), an alert object for alerts and one protocol object
// (dns in the version 2 layout, tls, quic, http) or, for a flow that ended,
// a flow object. What EVE has no place for (the ECS extension fields, the
// matched indicators, geo) goes into a top-level "phonehome" object, which
// EVE readers ignore or keep as is.
package eve

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
)

// TimeLayout is Suricata's timestamp: microseconds and a numeric zone
// without a colon (the schema's pattern requires it).
const TimeLayout = "2006-01-02T15:04:05.000000-0700"

// GID is the generator id of every alert: 1, the id of Suricata's own rule
// engine, because dashboards and suppression lists key on gid:sid pairs and
// treat other gids as decoder or preprocessor events.
const GID = 1

// Signature ids are SIDBase + FNV-1a(rule id) mod SIDCount: one sid per
// phonehome rule, the same on every sensor and in every release. The range
// sits beside the one `rules export --format suricata` uses (9100000–
// 9199999, one sid per rule, indicator and protocol), so that a SOC tells
// the two apart; it is large enough that two of a few hundred rules rarely
// share a sid, and alert.metadata.phonehome_rule_id names the rule exactly.
const (
	SIDBase  = 9_200_000
	SIDCount = 800_000
)

// Category is alert.category: the description Suricata's
// classification.config gives the policy-violation classtype, which the
// exported Suricata rules use too.
const Category = "Potential Corporate Privacy Violation"

// flowIDMask keeps flow_id below 2^53: readers that parse JSON numbers as
// float64 (JavaScript, jq) then keep it exact.
const flowIDMask = 1<<53 - 1

// record is one EVE line. Field order is Suricata's.
type record struct {
	Timestamp   string     `json:"timestamp"`
	FlowID      uint64     `json:"flow_id,omitempty"`
	EventType   string     `json:"event_type"`
	SrcIP       string     `json:"src_ip"`
	SrcPort     uint16     `json:"src_port"`
	DestIP      string     `json:"dest_ip"`
	DestPort    uint16     `json:"dest_port"`
	Proto       string     `json:"proto"`
	AppProto    string     `json:"app_proto,omitempty"`
	Host        string     `json:"host,omitempty"`
	CommunityID string     `json:"community_id,omitempty"`
	Ether       *ether     `json:"ether,omitempty"`
	Alert       *alertInfo `json:"alert,omitempty"`
	DNS         *dnsInfo   `json:"dns,omitempty"`
	TLS         *tlsInfo   `json:"tls,omitempty"`
	QUIC        *quicInfo  `json:"quic,omitempty"`
	HTTP        *httpInfo  `json:"http,omitempty"`
	Flow        *flowInfo  `json:"flow,omitempty"`
	Phonehome   ext        `json:"phonehome"`
}

type ether struct {
	SrcMAC string `json:"src_mac"`
}

type alertInfo struct {
	Action      string              `json:"action"`
	GID         int                 `json:"gid"`
	SignatureID uint32              `json:"signature_id"`
	Rev         int                 `json:"rev"`
	Signature   string              `json:"signature"`
	Category    string              `json:"category"`
	Severity    int                 `json:"severity"`
	Metadata    map[string][]string `json:"metadata"`
}

// dnsInfo is the version 2 layout of Suricata's dns object, used for
// queries and answers alike.
type dnsInfo struct {
	Version int         `json:"version"`
	Type    string      `json:"type"`
	ID      uint16      `json:"id"`
	QR      bool        `json:"qr,omitempty"`
	AA      bool        `json:"aa,omitempty"`
	TC      bool        `json:"tc,omitempty"`
	RD      bool        `json:"rd,omitempty"`
	RA      bool        `json:"ra,omitempty"`
	RRName  string      `json:"rrname"`
	RRType  string      `json:"rrtype"`
	RCode   string      `json:"rcode,omitempty"`
	Answers []dnsAnswer `json:"answers,omitempty"`
}

type dnsAnswer struct {
	RRName string `json:"rrname"`
	RRType string `json:"rrtype"`
	TTL    uint32 `json:"ttl"`
	RData  string `json:"rdata"`
}

type tlsInfo struct {
	SNI     string `json:"sni,omitempty"`
	Version string `json:"version,omitempty"`
	JA4     string `json:"ja4,omitempty"`
}

type quicInfo struct {
	Version string `json:"version,omitempty"`
	SNI     string `json:"sni,omitempty"`
	JA4     string `json:"ja4,omitempty"`
}

type httpInfo struct {
	Hostname  string `json:"hostname,omitempty"`
	URL       string `json:"url,omitempty"`
	UserAgent string `json:"http_user_agent,omitempty"`
	Method    string `json:"http_method,omitempty"`
	Protocol  string `json:"protocol,omitempty"`
}

// flowInfo counts payload bytes (Suricata counts whole packets): the
// sensor's flow table keeps no more.
type flowInfo struct {
	PktsToServer  uint64 `json:"pkts_toserver"`
	PktsToClient  uint64 `json:"pkts_toclient"`
	BytesToServer uint64 `json:"bytes_toserver"`
	BytesToClient uint64 `json:"bytes_toclient"`
	Start         string `json:"start,omitempty"`
	End           string `json:"end,omitempty"`
}

// ext is the top-level "phonehome" object: the fields of the ECS event
// that EVE has no place for.
type ext struct {
	Dataset           string    `json:"dataset,omitempty"` // phonehome.dns, phonehome.flow, …
	Reason            string    `json:"reason,omitempty"`
	Host              string    `json:"host,omitempty"`
	Category          []string  `json:"category,omitempty"`
	Status            string    `json:"status,omitempty"`
	Deadline          string    `json:"deadline,omitempty"`
	Partial           bool      `json:"partial,omitempty"`
	Matched           []matched `json:"matched,omitempty"`
	DestinationDomain string    `json:"destination_domain,omitempty"`
	DestinationGeo    *geo      `json:"destination_geo,omitempty"`
	ECHPublicNames    []string  `json:"ech_public_names,omitempty"`
	DNS               *dnsExt   `json:"dns,omitempty"`
	TLS               *tlsExt   `json:"tls,omitempty"`
	ObserverVersion   string    `json:"observer_version,omitempty"`
}

type matched struct {
	Atomic        string `json:"atomic"`
	Field         string `json:"field,omitempty"`
	Rule          string `json:"rule,omitempty"`
	IndicatorType string `json:"indicator_type,omitempty"`
	Provider      string `json:"provider,omitempty"`
	Confidence    string `json:"confidence,omitempty"`
}

type geo struct {
	CountryISOCode string `json:"country_iso_code,omitempty"`
	ASNumber       uint32 `json:"as_number,omitempty"`
	ASOrganization string `json:"as_organization,omitempty"`
}

type dnsExt struct {
	OpCode      string   `json:"op_code,omitempty"`
	HeaderFlags []string `json:"header_flags,omitempty"` // AD and CD too, which EVE does not show
}

type tlsExt struct {
	ALPN     []string `json:"alpn,omitempty"`
	ECH      bool     `json:"ech,omitempty"`
	ECHOuter bool     `json:"ech_outer,omitempty"`
	ESNI     bool     `json:"esni,omitempty"`
	SSLv2    bool     `json:"sslv2,omitempty"`
}

// Format returns the record's event as one EVE JSON line, without the
// newline. It is an alert.Format. Strings are escaped by encoding/json,
// HTML characters included, as in the ECS output.
func Format(r *alert.Record) ([]byte, error) {
	if r == nil || r.Event == nil {
		return nil, fmt.Errorf("eve: no event")
	}
	b, err := json.Marshal(build(r.Event))
	if err != nil {
		return nil, fmt.Errorf("eve: encoding event: %w", err)
	}
	return b, nil
}

// build maps an ECS event to its EVE record. The event is only read.
func build(e *alert.Event) *record {
	rec := &record{
		Timestamp: e.Timestamp.Format(TimeLayout),
		SrcIP:     e.Source.IP,
		SrcPort:   e.Source.Port,
		DestIP:    e.Destination.IP,
		DestPort:  e.Destination.Port,
		Proto:     proto(e.Network.Transport),
		AppProto:  e.Network.Protocol,
		Host:      e.Observer.Hostname,
		Phonehome: ext{
			Dataset:           e.Event.Dataset,
			Reason:            e.Event.Reason,
			DestinationDomain: e.Destination.Domain,
			ObserverVersion:   e.Observer.Version,
		},
	}
	rec.FlowID, rec.CommunityID = flowIDs(e)
	if mac := e.Source.MAC; mac != "" {
		rec.Ether = &ether{SrcMAC: strings.ToLower(strings.ReplaceAll(mac, "-", ":"))}
	}
	switch {
	case e.Event.Kind == alert.KindAlert:
		rec.EventType = "alert"
		rec.Alert = alertObject(e)
	case e.Network.Protocol != "":
		rec.EventType = e.Network.Protocol
	default:
		rec.EventType = "flow"
	}
	protocolObjects(rec, e)
	if e.Event.Start != nil || e.Source.Packets != 0 || e.Destination.Packets != 0 {
		f := &flowInfo{
			PktsToServer: e.Source.Packets, PktsToClient: e.Destination.Packets,
			BytesToServer: e.Source.Bytes, BytesToClient: e.Destination.Bytes,
		}
		if e.Event.Start != nil {
			f.Start = e.Event.Start.Format(TimeLayout)
		}
		if e.Event.End != nil {
			f.End = e.Event.End.Format(TimeLayout)
		}
		rec.Flow = f
	}
	extFields(&rec.Phonehome, e)
	return rec
}

// proto is Suricata's name of an IP protocol.
func proto(transport string) string {
	switch transport {
	case "ipv6-icmp":
		return "IPv6-ICMP"
	}
	return strings.ToUpper(transport)
}

// protocolNumbers are the IANA numbers of the transports Community ID
// hashes with ports (ICMP would need its type and code, which events do
// not carry).
var protocolNumbers = map[string]byte{"tcp": 6, "udp": 17, "sctp": 132}

// flowIDs returns flow_id and community_id. Both come from the Community
// ID v1 hash (seed 0) of the 5-tuple: the same in both directions (a DNS
// query and its answer, a TLS hello and the flow record share them) and on
// every sensor. community_id correlates with Zeek, Suricata and Arkime
// seeing the same connection; flow_id, the first 8 bytes of the hash below
// 2^53, correlates phonehome's own events. Unlike Suricata's flow_id it
// holds no start time, so a 5-tuple reused later keeps its id.
func flowIDs(e *alert.Event) (uint64, string) {
	num, ok := protocolNumbers[e.Network.Transport]
	src, err1 := netip.ParseAddr(e.Source.IP)
	dst, err2 := netip.ParseAddr(e.Destination.IP)
	if !ok || err1 != nil || err2 != nil {
		return 0, ""
	}
	src, dst = src.Unmap(), dst.Unmap()
	if src.Is4() != dst.Is4() {
		return 0, ""
	}
	sp, dp := e.Source.Port, e.Destination.Port
	if c := src.Compare(dst); c > 0 || c == 0 && sp > dp {
		src, dst, sp, dp = dst, src, dp, sp
	}
	var buf [2 + 16 + 16 + 1 + 1 + 2 + 2]byte // seed, addresses, proto, pad, ports
	b := buf[:2]                              // seed 0
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	b = append(b, num, 0)
	b = binary.BigEndian.AppendUint16(b, sp)
	b = binary.BigEndian.AppendUint16(b, dp)
	sum := sha1.Sum(b)
	id := binary.BigEndian.Uint64(sum[:8]) & flowIDMask
	if id == 0 {
		id = 1 // 0 would be left out
	}
	return id, "1:" + base64.StdEncoding.EncodeToString(sum[:])
}

// SignatureID is the signature_id of a phonehome rule.
func SignatureID(ruleID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(ruleID))
	return SIDBase + h.Sum32()%SIDCount
}

// Severity maps ECS event.severity to a Suricata severity as `rules
// export --format suricata` maps rule severities to priorities: 1 for
// high and critical, 2 medium, 3 low, 4 info (scores between the ones the
// pipeline gives split at the midpoints).
func Severity(score int) int {
	s, _ := alert.ScoreSeverity(score)
	return rules.SuricataPriority(s)
}

// severityName is the rule severity an ECS score stands for; Suricata's
// severity joins high and critical, the metadata keeps them apart.
func severityName(score int) string {
	s, _ := alert.ScoreSeverity(score)
	return s.String()
}

func alertObject(e *alert.Event) *alertInfo {
	a := &alertInfo{
		Action:   "allowed", // the sensor is passive: nothing is ever blocked
		GID:      GID,
		Rev:      1,
		Category: Category,
		Severity: Severity(e.Event.Severity),
		Metadata: map[string][]string{
			"source":             {"phonehome"},
			"phonehome_severity": {severityName(e.Event.Severity)},
		},
	}
	md := a.Metadata
	add := func(k, v string) {
		if v != "" {
			md[k] = append(md[k], v)
		}
	}
	if r := e.Rule; r != nil {
		a.SignatureID = SignatureID(r.ID)
		// The prefix is the one of the exported Suricata rules' msg, so
		// that one search finds both.
		a.Signature = "phonehome " + r.Ruleset + "/" + r.ID + ": " + r.Name
		// phonehome_rule, phonehome_profile and phonehome_category are
		// the keys of the exported rules' metadata too.
		add("phonehome_rule_id", r.ID)
		add("phonehome_rule", r.ID)
		add("phonehome_profile", r.Ruleset)
		add("phonehome_profile_version", r.Version)
		add("phonehome_category", r.Category)
		add("phonehome_reference", r.Reference)
	} else {
		a.SignatureID = SignatureID("")
		a.Signature = "phonehome alert"
	}
	if t := e.Threat; t != nil {
		for _, en := range t.Enrichments {
			if c := en.Indicator.Confidence; c != "" && !slices.Contains(md["phonehome_confidence"], c) {
				add("phonehome_confidence", c)
			}
		}
	}
	if p := e.Phonehome; p != nil {
		for _, c := range p.Category {
			if !slices.Contains(md["phonehome_category"], c) {
				add("phonehome_category", c)
			}
		}
		add("phonehome_status", p.Status)
		add("phonehome_deadline", p.Deadline)
	}
	return a
}

// protocolObjects adds the dns, tls, quic or http object.
func protocolObjects(rec *record, e *alert.Event) {
	if d := e.DNS; d != nil {
		o := &dnsInfo{Version: 2, Type: d.Type, ID: d.ID, QR: d.Type == "answer",
			RRName: d.Question.Name, RRType: d.Question.Type, RCode: d.ResponseCode}
		for _, f := range d.HeaderFlags {
			switch f {
			case "AA":
				o.AA = true
			case "TC":
				o.TC = true
			case "RD":
				o.RD = true
			case "RA":
				o.RA = true
			}
		}
		if len(d.Answers) > 0 {
			o.Answers = make([]dnsAnswer, len(d.Answers))
			for i, an := range d.Answers {
				o.Answers[i] = dnsAnswer{RRName: an.Name, RRType: an.Type, TTL: an.TTL, RData: an.Data}
			}
		}
		rec.DNS = o
		if d.OpCode != "" || len(d.HeaderFlags) > 0 {
			rec.Phonehome.DNS = &dnsExt{OpCode: d.OpCode, HeaderFlags: d.HeaderFlags}
		}
	}
	if t := e.TLS; t != nil {
		c := &t.Client
		if e.Network.Protocol == "quic" {
			q := &quicInfo{SNI: c.ServerName, JA4: c.JA4}
			if e.Phonehome != nil {
				q.Version = e.Phonehome.QUICVersion
			}
			rec.QUIC = q
		} else {
			rec.TLS = &tlsInfo{SNI: c.ServerName, Version: tlsVersion(t.VersionProtocol, t.Version), JA4: c.JA4}
		}
		if len(c.ALPN) > 0 || c.ECH || c.ECHOuter || c.ESNI || c.SSLv2 {
			rec.Phonehome.TLS = &tlsExt{ALPN: c.ALPN, ECH: c.ECH, ECHOuter: c.ECHOuter, ESNI: c.ESNI, SSLv2: c.SSLv2}
		}
	}
	if e.HTTP != nil || e.URL != nil || e.UserAgent != nil {
		h := &httpInfo{}
		if e.HTTP != nil {
			h.Method = e.HTTP.Request.Method
			if v := e.HTTP.Version; v != "" {
				h.Protocol = "HTTP/" + v
			}
		}
		if e.URL != nil {
			h.Hostname, h.URL = e.URL.Domain, e.URL.Original
		}
		if e.UserAgent != nil {
			h.UserAgent = e.UserAgent.Original
		}
		rec.HTTP = h
	}
}

// tlsVersion is Suricata's name of a TLS version.
func tlsVersion(protocol, version string) string {
	switch version {
	case "":
		return ""
	case "2.0":
		return "SSLv2"
	case "3.0":
		return "SSLv3"
	case "1.0":
		return "TLSv1"
	case "1.1", "1.2", "1.3":
		if protocol == "" || protocol == "tls" {
			return "TLS " + version
		}
	}
	return strings.ToUpper(protocol) + " " + version
}

// extFields fills the phonehome object from the ECS extension and threat
// objects.
func extFields(x *ext, e *alert.Event) {
	if p := e.Phonehome; p != nil {
		x.Host = p.Host
		x.Category = p.Category
		x.Status = p.Status
		x.Deadline = p.Deadline
		x.Partial = p.Partial
		x.ECHPublicNames = p.ECHPublicNames
	}
	if t := e.Threat; t != nil && len(t.Enrichments) > 0 {
		x.Matched = make([]matched, len(t.Enrichments))
		for i, en := range t.Enrichments {
			x.Matched[i] = matched{Atomic: en.Matched.Atomic, Field: en.Matched.Field, Rule: en.Matched.ID,
				IndicatorType: en.Indicator.Type, Provider: en.Indicator.Provider, Confidence: en.Indicator.Confidence}
		}
	}
	d := &e.Destination
	if d.Geo != nil || d.AS != nil {
		g := &geo{}
		if d.Geo != nil {
			g.CountryISOCode = d.Geo.CountryISOCode
		}
		if d.AS != nil {
			g.ASNumber = d.AS.Number
			if d.AS.Organization != nil {
				g.ASOrganization = d.AS.Organization.Name
			}
		}
		x.DestinationGeo = g
	}
}
