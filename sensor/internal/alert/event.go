// Package alert holds the event schema (Elastic Common Schema, nested JSON,
// one event per line) and the sinks that write events.
package alert

import (
	"bufio"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Event kinds (event.kind).
const (
	KindEvent = "event" // an observation, matched or not
	KindAlert = "alert" // a match worth telling the SOC about
)

// Event is one ECS event. Optional objects are pointers so that they are
// left out when empty. Every string that came from the wire has been
// escaped by the extractor before it gets here; encoding/json escapes
// what is left for JSON.
type Event struct {
	Timestamp   time.Time     `json:"@timestamp"`
	ECS         ECS           `json:"ecs"`
	Event       EventMeta     `json:"event"`
	Network     Network       `json:"network"`
	Source      Endpoint      `json:"source"`
	Destination Endpoint      `json:"destination"`
	DNS         *DNS          `json:"dns,omitempty"`
	TLS         *TLS          `json:"tls,omitempty"`
	HTTP        *HTTP         `json:"http,omitempty"`
	URL         *URL          `json:"url,omitempty"`
	UserAgent   *UserAgent    `json:"user_agent,omitempty"`
	Rule        *Rule         `json:"rule,omitempty"`
	Threat      *Threat       `json:"threat,omitempty"`
	Observer    Observer      `json:"observer"`
	Phonehome   *PhonehomeExt `json:"phonehome,omitempty"`
}

// ECS names the schema version the events follow.
type ECS struct {
	Version string `json:"version"`
}

// ECSVersion is the ECS version the events follow.
const ECSVersion = "8.11.0"

// EventMeta is the ECS event object.
type EventMeta struct {
	Kind     string     `json:"kind"`
	Category []string   `json:"category,omitempty"`
	Type     []string   `json:"type,omitempty"`
	Dataset  string     `json:"dataset"`
	Module   string     `json:"module"`
	Severity int        `json:"severity,omitempty"`
	Start    *time.Time `json:"start,omitempty"` // flow events: first and last packet
	End      *time.Time `json:"end,omitempty"`
	Reason   string     `json:"reason,omitempty"`
}

// Network is the ECS network object.
type Network struct {
	Protocol  string `json:"protocol,omitempty"` // empty for flow-level contacts (address, port, learned name)
	Transport string `json:"transport"`
	Type      string `json:"type,omitempty"` // ipv4, ipv6
}

// Endpoint is the ECS source or destination object.
type Endpoint struct {
	IP     string `json:"ip"`
	Port   uint16 `json:"port"`
	MAC    string `json:"mac,omitempty"`
	Domain string `json:"domain,omitempty"`
	// Payload bytes and packets sent by this endpoint (flow events).
	Bytes   uint64 `json:"bytes,omitempty"`
	Packets uint64 `json:"packets,omitempty"`
	Geo     *Geo   `json:"geo,omitempty"`
	AS      *AS    `json:"as,omitempty"`
}

// Geo is ECS geo, as far as the sensor knows it.
type Geo struct {
	CountryISOCode string `json:"country_iso_code"`
}

// AS is ECS as (autonomous system).
type AS struct {
	Number       uint32 `json:"number"`
	Organization *struct {
		Name string `json:"name"`
	} `json:"organization,omitempty"`
}

// DNS is the ECS dns object.
type DNS struct {
	Type         string      `json:"type"` // query or answer
	ID           uint16      `json:"id"`
	OpCode       string      `json:"op_code,omitempty"`
	ResponseCode string      `json:"response_code,omitempty"`
	HeaderFlags  []string    `json:"header_flags,omitempty"`
	Question     DNSQuestion `json:"question"`
	Answers      []DNSAnswer `json:"answers,omitempty"`
	ResolvedIP   []string    `json:"resolved_ip,omitempty"`
}

// DNSQuestion is dns.question.
type DNSQuestion struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Class string `json:"class,omitempty"`
}

// DNSAnswer is one entry of dns.answers.
type DNSAnswer struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data string `json:"data"`
	TTL  uint32 `json:"ttl"`
}

// TLS is the ECS tls object (client side only: the sensor reads hellos).
type TLS struct {
	Client TLSClient `json:"client"`
	// Version offered: "1.3" when the hello offers TLS 1.3, else the legacy version.
	Version         string `json:"version,omitempty"`
	VersionProtocol string `json:"version_protocol,omitempty"`
}

// TLSClient is tls.client.
type TLSClient struct {
	ServerName string   `json:"server_name,omitempty"`
	JA4        string   `json:"ja4,omitempty"`
	ALPN       []string `json:"supported_alpn,omitempty"` // not ECS core; named as in packetbeat
	ECH        bool     `json:"ech,omitempty"`            // an encrypted_client_hello extension is present (real or GREASE)
	ECHOuter   bool     `json:"ech_outer,omitempty"`      // server_name is a known ECH public name: the real destination is encrypted
	ESNI       bool     `json:"esni,omitempty"`
	SSLv2      bool     `json:"sslv2,omitempty"`
}

// HTTP is the ECS http object.
type HTTP struct {
	Version string      `json:"version,omitempty"`
	Request HTTPRequest `json:"request"`
}

// HTTPRequest is http.request.
type HTTPRequest struct {
	Method string `json:"method,omitempty"`
}

// URL is the ECS url object.
type URL struct {
	Domain   string `json:"domain,omitempty"`
	Original string `json:"original,omitempty"`
}

// UserAgent is the ECS user_agent object.
type UserAgent struct {
	Original string `json:"original"`
}

// Rule is the ECS rule object: which rule matched.
type Rule struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Category    string `json:"category"`
	Ruleset     string `json:"ruleset"`
	Version     string `json:"version,omitempty"`
	Reference   string `json:"reference,omitempty"`
	Description string `json:"description,omitempty"`
}

// Threat is the ECS threat object.
type Threat struct {
	Enrichments []Enrichment `json:"enrichments"`
}

// Enrichment is one threat.enrichments entry: an indicator that matched.
type Enrichment struct {
	Indicator Indicator `json:"indicator"`
	Matched   Matched   `json:"matched"`
}

// Indicator is threat.enrichments.indicator.
type Indicator struct {
	Type        string `json:"type"` // domain-name, ipv4-addr, ipv6-addr, port
	Description string `json:"description"`
	Provider    string `json:"provider"`
	Confidence  string `json:"confidence,omitempty"`
	Reference   string `json:"reference,omitempty"`
}

// Matched is threat.enrichments.matched.
type Matched struct {
	Atomic string `json:"atomic"`
	Field  string `json:"field"`
	ID     string `json:"id"`
	Type   string `json:"type"`
}

// Observer is the ECS observer object: the sensor.
type Observer struct {
	Hostname string `json:"hostname,omitempty"`
	Type     string `json:"type"`
	Product  string `json:"product"`
	Version  string `json:"version,omitempty"`
}

// PhonehomeExt holds the fields ECS has no place for.
type PhonehomeExt struct {
	Host     string   `json:"host,omitempty"`     // the internal host the alert is about
	Category []string `json:"category,omitempty"` // categories of every hit
	Partial  bool     `json:"partial,omitempty"`  // the message was malformed after the parts shown
	// ECHPublicNames are the outer names an HTTPS/SVCB answer tells
	// clients to put in their ClientHello: the real destination will be
	// hidden by ECH behind them.
	ECHPublicNames []string `json:"ech_public_names,omitempty"`
	QUICVersion    string   `json:"quic_version,omitempty"`
	// Status is "still-phoning-home" on alerts about a host past its
	// removal deadline (Deadline, YYYY-MM-DD).
	Status   string `json:"status,omitempty"`
	Deadline string `json:"deadline,omitempty"`
}

// Writer writes events as JSON lines. It is safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	w   *bufio.Writer
	enc *json.Encoder
	n   uint64
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(true)
	return &Writer{w: bw, enc: enc}
}

// Write writes one event.
func (w *Writer) Write(e *Event) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	return w.enc.Encode(e)
}

// Swap flushes what is buffered to the current destination and goes on
// writing to nw: after logrotate moved the file, SIGHUP reopens it.
func (w *Writer) Swap(nw io.Writer) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.w.Flush()
	w.w.Reset(nw) // the encoder writes to w.w, which now writes to nw
	return err
}

// Flush flushes buffered events.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Flush()
}

// Count returns the number of events written.
func (w *Writer) Count() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}
