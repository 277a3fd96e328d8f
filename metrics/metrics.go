package metrics

import (
	"errors"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric name.
const Namespace = "phonehome"

// Snapshot is what the sensor has counted, as read at one scrape. It holds
// numbers and label values from fixed sets only. Counters (uint64 fields
// named like the metric without _total) only grow while the process runs.
type Snapshot struct {
	// Sources are the capture sources: one per interface in live
	// capture, one named "file" for capture files.
	Sources []Source
	// CaptureRunning is true while packets are being read.
	CaptureRunning bool
	// QueueDrops counts packets dropped because the workers fell behind.
	QueueDrops uint64
	// DecodeErrors counts frames that failed to decode, by layer.
	DecodeErrors []Count
	DNSMessages  uint64
	DNSMalformed uint64 // payloads on a DNS port that did not parse
	// ClientHellos counts TLS ClientHellos read, by transport (tcp, quic).
	ClientHellos []Count
	QUICInitials uint64 // client datagrams that start with a QUIC Initial
	HTTPRequests uint64 // plain-HTTP request heads read
	// Unseen counts hellos whose server name could not be read, by
	// protocol (tls, quic) and reason.
	Unseen       []UnseenCount
	Observations uint64 // observations matched against the rules
	Hits         uint64 // rule hits, before deduplication
	Events       uint64 // events handed to the outputs
	GeoLookups   uint64
	// Alerts counts alert events by profile, category, kind and severity.
	Alerts []AlertCount
	// Contacts counts matched contacts of inventoried hosts, by category.
	Contacts  []Count
	Hosts     Hosts
	Inventory Inventory
	Flows     Flows
	// ReassemblyRefused counts hellos or request heads not gathered
	// because the worker's gathering memory was spent.
	ReassemblyRefused uint64
	// ReassemblyTimeouts and ReassemblyReclaimed count gathers given up
	// after 10 s, and ended early to make room.
	ReassemblyTimeouts, ReassemblyReclaimed uint64
	// StreamStartLost counts TCP streams whose start was never captured.
	StreamStartLost uint64
	Learned         Learned
	// Flush is the inventory flusher's work; nil without a store.
	Flush *Flush
	// Rules and GeoIP are the reloads of the rules and GeoIP databases.
	Rules Reload
	GeoIP Reload
	// RulesLoaded counts the rules in force, by profile.
	RulesLoaded []Count
	// GeoIPBuilt are the build times of the GeoIP databases in force, by
	// database: embedded, country, asn.
	GeoIPBuilt []Timestamp
	// Outputs are the event outputs, named as configured (credentials
	// removed): a bounded set from the configuration, not the wire.
	Outputs []Output
}

// Output counts what one event output did: every event offered to it is
// sent, dropped (queue full) or failed (retries spent), or still queued.
type Output struct {
	Name                           string
	Sent, Retried, Dropped, Failed uint64
	Queued, QueueCap               int
}

// Source is one capture source.
type Source struct {
	Name           string // "file", or the interface name
	Packets, Bytes uint64
	// KernelDrops and InterfaceDrops are what the kernel's socket and the
	// interface reported dropped (live capture; zero for files).
	KernelDrops, InterfaceDrops uint64
}

// Count is a number with one label value.
type Count struct {
	Label string
	N     uint64
}

// UnseenCount counts unseen names of one protocol for one reason.
type UnseenCount struct {
	Protocol, Reason string
	N                uint64
}

// AlertCount counts the alerts of one profile, category, indicator kind
// and severity.
type AlertCount struct {
	Profile, Category, Kind, Severity string
	N                                 uint64
}

// Hosts counts the inventoried hosts.
type Hosts struct {
	// Total is the number of inventoried hosts.
	Total uint64
	// Added counts hosts added to the inventory since the start: a
	// counter, where Total is a gauge.
	Added uint64
	// PhoningHome are the hosts with a contact in the last 24 hours of
	// the sensor's clock; AfterDeadline those of them whose last contact
	// came at or after their removal deadline.
	PhoningHome, AfterDeadline uint64
	// ByStatus counts hosts by report status (never-removed,
	// still-phoning-home, removed, no-deadline).
	ByStatus []Count
	// ByProfile counts hosts that matched a rule of each profile.
	ByProfile []Count
}

// Inventory counts what the inventory did with contacts.
type Inventory struct {
	ExternalContacts   uint64 // from clients outside the home networks: alerted, not kept
	SuppressedContacts uint64 // inside an open deduplication window
	OverdueContacts    uint64 // at or after the host's removal deadline
	RefusedHosts       uint64 // new hosts beyond the inventory's cap
	DroppedEvidence    uint64 // evidence rows not persisted: the flush queue was full
}

// Flows describes the flow tables of all workers together.
type Flows struct {
	Active, Max               uint64 // gauges
	Created, Expired, Refused uint64 // Refused: the table was full
	Evicted                   uint64 // ended early to make room for a new flow
}

// Learned describes the table of addresses learned from DNS answers.
type Learned struct {
	Len, Max                uint64 // gauges
	Added, Expired, Evicted uint64
}

// Flush describes the inventory flusher.
type Flush struct {
	Flushes, Failures, Rows uint64
	LastDuration            time.Duration
	Pending                 uint64 // batches waiting for a retry
}

// Reload describes the reloads of one kind of configuration.
type Reload struct {
	Reloads, Failures uint64
	// LastSuccessful is false when the last reload failed (the old
	// configuration stays in force).
	LastSuccessful bool
	// LastSuccess is when the configuration in force was loaded.
	LastSuccess time.Time
}

// Timestamp is a time with one label value.
type Timestamp struct {
	Label string
	Time  time.Time
}

// BuildInfo labels phonehome_build_info.
type BuildInfo struct {
	Version, GoVersion string
}

// Metrics is the collector of every sensor metric. It is safe for
// concurrent use: each Collect calls the snapshot function once.
type Metrics struct {
	snapshot func() Snapshot
	descs    []*prometheus.Desc
	names    []string
	build    prometheus.Metric

	capturePackets, captureBytes, captureKernelDrops, captureInterfaceDrops, captureRunning *prometheus.Desc
	queueDrops, decodeErrors                                                                *prometheus.Desc
	dnsMessages, dnsMalformed, clientHellos, quicInitials, httpRequests, namesUnseen        *prometheus.Desc
	observations, hits, events, geoLookups, alerts, contacts                                *prometheus.Desc
	hosts, hostsAdded, hostsPhoningHome, hostsAfterDeadline, reportHosts, profileHosts      *prometheus.Desc
	invExternal, invSuppressed, invOverdue, invRefusedHosts, invDroppedEvidence             *prometheus.Desc
	flows, flowsMax, flowsCreated, flowsExpired, flowsRefused, flowsEvicted                 *prometheus.Desc
	reassemblyTimeouts, reassemblyReclaimed                                                 *prometheus.Desc
	reassemblyRefused, streamStartLost                                                      *prometheus.Desc
	learned, learnedMax, learnedAdded, learnedExpired, learnedEvicted                       *prometheus.Desc
	flushes, flushFailures, flushRows, flushDuration, flushPending                          *prometheus.Desc
	rulesReloads, rulesFailures, rulesOK, rulesSuccessTime, rulesLoaded                     *prometheus.Desc
	geoReloads, geoFailures, geoOK, geoSuccessTime, geoBuilt                                *prometheus.Desc
	outputEvents, outputQueue, outputQueueCap                                               *prometheus.Desc
	buildInfo                                                                               *prometheus.Desc
}

// New returns the collector, registered into reg. snapshot is called at
// every scrape; it must be safe for concurrent use and cheap.
func New(reg prometheus.Registerer, build BuildInfo, snapshot func() Snapshot) (*Metrics, error) {
	if snapshot == nil {
		return nil, errors.New("metrics: no snapshot function")
	}
	m := newDescs()
	m.snapshot = snapshot
	m.build = prometheus.MustNewConstMetric(m.buildInfo, prometheus.GaugeValue, 1, build.Version, build.GoVersion)
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// RegisterRuntime registers the Go runtime and process collectors (go_*,
// process_*), as every Prometheus exporter does.
func RegisterRuntime(reg prometheus.Registerer) error {
	return errors.Join(
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	)
}

// Names returns the names of the metrics the collector exposes (counters
// with their _total suffix), sorted.
func Names() []string {
	out := newDescs().names
	slices.Sort(out)
	return out
}

func newDescs() *Metrics {
	m := &Metrics{}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		desc := prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
		m.descs = append(m.descs, desc)
		m.names = append(m.names, Namespace+"_"+name)
		return desc
	}
	m.capturePackets = d("capture_packets_total", "Packets read from the capture source.", "source")
	m.captureBytes = d("capture_bytes_total", "Bytes of the packets read from the capture source, as on the wire.", "source")
	m.captureKernelDrops = d("capture_kernel_drops_total", "Packets the kernel dropped before the sensor read them (live capture).", "source")
	m.captureInterfaceDrops = d("capture_interface_drops_total", "Packets the network interface dropped (live capture).", "source")
	m.captureRunning = d("capture_running", "1 while the sensor reads packets, 0 once a capture file has been read.")
	m.queueDrops = d("queue_drops_total", "Packets dropped because the workers fell behind the capture.")
	m.decodeErrors = d("decode_errors_total", "Frames that failed to decode, by protocol layer.", "layer")
	m.dnsMessages = d("dns_messages_total", "DNS messages read.")
	m.dnsMalformed = d("dns_malformed_messages_total", "Payloads on a DNS port that did not parse as DNS.")
	m.clientHellos = d("client_hellos_total", "TLS ClientHellos read, over TCP or inside QUIC Initials.", "transport")
	m.quicInitials = d("quic_initials_total", "Client datagrams that start with a QUIC Initial (or a gQUIC CHLO).")
	m.httpRequests = d("http_request_heads_total", "Plain-HTTP request heads read.")
	m.namesUnseen = d("names_unseen_total", "ClientHellos whose server name the sensor could not read, by protocol and reason.", "protocol", "reason")
	m.observations = d("observations_total", "Observations (DNS messages, ClientHellos, HTTP requests, flows) matched against the rules.")
	m.hits = d("hits_total", "Rule hits, before one alert per host, rule and window is kept.")
	m.events = d("events_total", "Events handed to the outputs.")
	m.geoLookups = d("geoip_lookups_total", "Country and ASN look-ups (at most one per flow, when rules need them).")
	m.alerts = d("alerts_total", "Alerts, by profile, rule category, kind of indicator that matched, and severity.", "profile", "category", "kind", "severity")
	m.contacts = d("contacts_total", "Matched contacts of inventoried hosts, by rule category.", "category")
	m.hosts = d("hosts", "Hosts in the inventory.")
	m.hostsAdded = d("hosts_added_total", "Hosts added to the inventory since the sensor started.")
	m.hostsPhoningHome = d("hosts_phoning_home", "Inventoried hosts with a contact in the last 24 hours of the sensor's clock.")
	m.hostsAfterDeadline = d("hosts_phoning_home_after_deadline", "Hosts phoning home (last 24 hours) whose last contact came at or after their removal deadline.")
	m.reportHosts = d("report_hosts", "Inventoried hosts by compliance-report status.", "status")
	m.profileHosts = d("profile_hosts", "Inventoried hosts that matched a rule of the profile.", "profile")
	m.invExternal = d("inventory_external_contacts_total", "Contacts from clients outside the home networks: alerted, not inventoried.")
	m.invSuppressed = d("inventory_suppressed_contacts_total", "Contacts inside an open deduplication window (no new alert).")
	m.invOverdue = d("inventory_overdue_contacts_total", "Contacts at or after the host's removal deadline.")
	m.invRefusedHosts = d("inventory_refused_hosts_total", "New hosts not kept because the inventory was full.")
	m.invDroppedEvidence = d("inventory_dropped_evidence_total", "Evidence rows not persisted because the flush queue was full.")
	m.flows = d("flows", "Flows in the flow tables.")
	m.flowsMax = d("flows_max", "Capacity of the flow tables.")
	m.flowsCreated = d("flows_created_total", "Flows created.")
	m.flowsExpired = d("flows_expired_total", "Flows expired (idle, on packet time).")
	m.flowsRefused = d("flows_refused_total", "New flows refused because the flow table was full and no flow could be evicted.")
	m.flowsEvicted = d("flows_evicted_total", "Flows ended early, the closest to their expiry, to make room for a new flow in a full table.")
	m.reassemblyTimeouts = d("reassembly_timeouts_total", "Hellos or request heads still incomplete 10 s after their first segment, given up.")
	m.reassemblyReclaimed = d("reassembly_reclaimed_total", "Incomplete gathers ended early, the oldest first, to make room for a new one.")
	m.reassemblyRefused = d("reassembly_refused_total", "Hellos or request heads not gathered because the gathering memory was spent.")
	m.streamStartLost = d("reassembly_start_lost_total", "TCP streams whose start was never captured.")
	m.learned = d("learned_addresses", "Addresses remembered from DNS answers to matched names.")
	m.learnedMax = d("learned_addresses_max", "Capacity of the learned-address table.")
	m.learnedAdded = d("learned_addresses_added_total", "Addresses learned from DNS answers to matched names.")
	m.learnedExpired = d("learned_addresses_expired_total", "Learned addresses forgotten when their TTL ran out.")
	m.learnedEvicted = d("learned_addresses_evicted_total", "Learned addresses evicted because the table was full.")
	m.flushes = d("inventory_flushes_total", "Writes of inventory changes to the store, failed ones included.")
	m.flushFailures = d("inventory_flush_failures_total", "Writes of inventory changes to the store that failed.")
	m.flushRows = d("inventory_flushed_rows_total", "Rows written to the inventory store.")
	m.flushDuration = d("inventory_last_flush_duration_seconds", "Duration of the last write to the inventory store.")
	m.flushPending = d("inventory_flush_pending_batches", "Batches of inventory changes waiting for a retry after a failed write.")
	m.rulesReloads = d("rules_reloads_total", "Reloads of the rules (SIGHUP, /-/reload), failed ones included.")
	m.rulesFailures = d("rules_reload_failures_total", "Reloads of the rules that failed; the old rules stayed in force.")
	m.rulesOK = d("rules_last_reload_successful", "1 if the last reload of the rules succeeded, else 0.")
	m.rulesSuccessTime = d("rules_last_reload_success_timestamp_seconds", "When the rules in force were loaded.")
	m.rulesLoaded = d("rules_loaded", "Rules in force, by profile.", "profile")
	m.geoReloads = d("geoip_reloads_total", "Reloads of the GeoIP databases (SIGHUP, /-/reload, file change), failed ones included.")
	m.geoFailures = d("geoip_reload_failures_total", "Reloads of the GeoIP databases that failed; the old databases stayed in force.")
	m.geoOK = d("geoip_last_reload_successful", "1 if the last reload of the GeoIP databases succeeded, else 0.")
	m.geoSuccessTime = d("geoip_last_reload_success_timestamp_seconds", "When the GeoIP databases in force were loaded.")
	m.geoBuilt = d("geoip_database_build_timestamp_seconds", "Build time of a GeoIP database in force (mmdb build_epoch).", "database")
	m.outputEvents = d("output_events_total", "Events offered to an output, by what became of them: sent, retried (re-sent after a failure), dropped (queue full) or failed (retries spent).", "output", "result")
	m.outputQueue = d("output_queue_length", "Events waiting in an output's queue.", "output")
	m.outputQueueCap = d("output_queue_capacity", "Capacity of an output's queue; events beyond it are dropped.", "output")
	m.buildInfo = d("build_info", "A metric with a constant '1' value labelled by the version of phonehome and the Go version it was built with.", "version", "goversion")
	return m
}

// Describe sends the descriptors of every metric.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
}

// Collect reads a snapshot and sends every metric.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	s := m.snapshot()
	counter := func(d *prometheus.Desc, v uint64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), lv...)
	}
	gauge := func(d *prometheus.Desc, v float64, lv ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	boolean := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	stamp := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}

	for _, src := range s.Sources {
		counter(m.capturePackets, src.Packets, src.Name)
		counter(m.captureBytes, src.Bytes, src.Name)
		counter(m.captureKernelDrops, src.KernelDrops, src.Name)
		counter(m.captureInterfaceDrops, src.InterfaceDrops, src.Name)
	}
	gauge(m.captureRunning, boolean(s.CaptureRunning))
	counter(m.queueDrops, s.QueueDrops)
	for _, c := range s.DecodeErrors {
		counter(m.decodeErrors, c.N, c.Label)
	}
	counter(m.dnsMessages, s.DNSMessages)
	counter(m.dnsMalformed, s.DNSMalformed)
	for _, c := range s.ClientHellos {
		counter(m.clientHellos, c.N, c.Label)
	}
	counter(m.quicInitials, s.QUICInitials)
	counter(m.httpRequests, s.HTTPRequests)
	for _, u := range s.Unseen {
		counter(m.namesUnseen, u.N, u.Protocol, u.Reason)
	}
	counter(m.observations, s.Observations)
	counter(m.hits, s.Hits)
	counter(m.events, s.Events)
	counter(m.geoLookups, s.GeoLookups)
	for _, o := range s.Outputs {
		counter(m.outputEvents, o.Sent, o.Name, "sent")
		counter(m.outputEvents, o.Retried, o.Name, "retried")
		counter(m.outputEvents, o.Dropped, o.Name, "dropped")
		counter(m.outputEvents, o.Failed, o.Name, "failed")
		gauge(m.outputQueue, float64(o.Queued), o.Name)
		gauge(m.outputQueueCap, float64(o.QueueCap), o.Name)
	}
	for _, a := range s.Alerts {
		counter(m.alerts, a.N, a.Profile, a.Category, a.Kind, a.Severity)
	}
	for _, c := range s.Contacts {
		counter(m.contacts, c.N, c.Label)
	}

	h := &s.Hosts
	gauge(m.hosts, float64(h.Total))
	counter(m.hostsAdded, h.Added)
	gauge(m.hostsPhoningHome, float64(h.PhoningHome))
	gauge(m.hostsAfterDeadline, float64(h.AfterDeadline))
	for _, c := range h.ByStatus {
		gauge(m.reportHosts, float64(c.N), c.Label)
	}
	for _, c := range h.ByProfile {
		gauge(m.profileHosts, float64(c.N), c.Label)
	}
	inv := &s.Inventory
	counter(m.invExternal, inv.ExternalContacts)
	counter(m.invSuppressed, inv.SuppressedContacts)
	counter(m.invOverdue, inv.OverdueContacts)
	counter(m.invRefusedHosts, inv.RefusedHosts)
	counter(m.invDroppedEvidence, inv.DroppedEvidence)

	gauge(m.flows, float64(s.Flows.Active))
	gauge(m.flowsMax, float64(s.Flows.Max))
	counter(m.flowsCreated, s.Flows.Created)
	counter(m.flowsExpired, s.Flows.Expired)
	counter(m.flowsRefused, s.Flows.Refused)
	counter(m.flowsEvicted, s.Flows.Evicted)
	counter(m.reassemblyTimeouts, s.ReassemblyTimeouts)
	counter(m.reassemblyReclaimed, s.ReassemblyReclaimed)
	counter(m.reassemblyRefused, s.ReassemblyRefused)
	counter(m.streamStartLost, s.StreamStartLost)
	gauge(m.learned, float64(s.Learned.Len))
	gauge(m.learnedMax, float64(s.Learned.Max))
	counter(m.learnedAdded, s.Learned.Added)
	counter(m.learnedExpired, s.Learned.Expired)
	counter(m.learnedEvicted, s.Learned.Evicted)

	if f := s.Flush; f != nil {
		counter(m.flushes, f.Flushes)
		counter(m.flushFailures, f.Failures)
		counter(m.flushRows, f.Rows)
		gauge(m.flushDuration, f.LastDuration.Seconds())
		gauge(m.flushPending, float64(f.Pending))
	}

	counter(m.rulesReloads, s.Rules.Reloads)
	counter(m.rulesFailures, s.Rules.Failures)
	gauge(m.rulesOK, boolean(s.Rules.LastSuccessful))
	gauge(m.rulesSuccessTime, stamp(s.Rules.LastSuccess))
	for _, c := range s.RulesLoaded {
		gauge(m.rulesLoaded, float64(c.N), c.Label)
	}
	counter(m.geoReloads, s.GeoIP.Reloads)
	counter(m.geoFailures, s.GeoIP.Failures)
	gauge(m.geoOK, boolean(s.GeoIP.LastSuccessful))
	gauge(m.geoSuccessTime, stamp(s.GeoIP.LastSuccess))
	for _, t := range s.GeoIPBuilt {
		gauge(m.geoBuilt, stamp(t.Time), t.Label)
	}
	ch <- m.build
}
