package metrics

import (
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
)

// full is a snapshot with every field set, so that every metric shows.
func full() Snapshot {
	built := time.Date(2026, 6, 17, 19, 0, 0, 0, time.UTC)
	return Snapshot{
		Sources:        []Source{{Name: "file", Packets: 183, Bytes: 28000, KernelDrops: 1, InterfaceDrops: 2}},
		CaptureRunning: true,
		QueueDrops:     3,
		DecodeErrors:   []Count{{"link", 0}, {"ipv4", 4}},
		DNSMessages:    50, DNSMalformed: 1,
		ClientHellos: []Count{{"tcp", 20}, {"quic", 2}},
		QUICInitials: 3, HTTPRequests: 4,
		Unseen:       []UnseenCount{{"tls", "no_sni", 1}, {"quic", "undecryptable", 2}},
		Observations: 80, Hits: 30, Events: 12, GeoLookups: 9,
		Alerts:   []AlertCount{{"kaspersky", "update", "name", "high", 5}},
		Contacts: []Count{{"update", 7}, {"ksn-telemetry", 3}},
		Hosts: Hosts{Total: 3, Added: 3, PhoningHome: 3, AfterDeadline: 2,
			ByStatus:  []Count{{"never-removed", 2}, {"still-phoning-home", 1}, {"removed", 0}, {"no-deadline", 0}},
			ByProfile: []Count{{"kaspersky", 3}}},
		Inventory:         Inventory{ExternalContacts: 1, SuppressedContacts: 2, OverdueContacts: 3, RefusedHosts: 4, DroppedEvidence: 5},
		Flows:             Flows{Active: 10, Max: 262144, Created: 40, Expired: 30, Refused: 0, Evicted: 2},
		ReassemblyRefused: 1, StreamStartLost: 2, ReassemblyTimeouts: 3, ReassemblyReclaimed: 4,
		Learned:     Learned{Len: 5, Max: 65536, Added: 6, Expired: 1, Evicted: 0},
		Flush:       &Flush{Flushes: 2, Failures: 1, Rows: 40, LastDuration: 1500 * time.Microsecond, Pending: 1},
		Rules:       Reload{Reloads: 1, Failures: 1, LastSuccessful: false, LastSuccess: time.Unix(1700000000, 0)},
		GeoIP:       Reload{Reloads: 0, LastSuccessful: true, LastSuccess: time.Unix(1700000000, 0)},
		RulesLoaded: []Count{{"kaspersky", 40}, {"russian-hosted", 1}},
		GeoIPBuilt:  []Timestamp{{"embedded", built}},
		Outputs:     []Output{{Name: "syslog+tcp://127.0.0.1:514", Sent: 9, Retried: 2, Dropped: 1, Failed: 1, Queued: 3, QueueCap: 10000}},
	}
}

func newRegistry(t *testing.T, s Snapshot) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if _, err := New(reg, BuildInfo{Version: "v1.2.3", GoVersion: "go1.26.8"}, func() Snapshot { return s }); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestExposition(t *testing.T) {
	reg := newRegistry(t, full())
	want := `
# HELP phonehome_alerts_total Alerts, by profile, rule category, kind of indicator that matched, and severity.
# TYPE phonehome_alerts_total counter
phonehome_alerts_total{category="update",kind="name",profile="kaspersky",severity="high"} 5
# HELP phonehome_build_info A metric with a constant '1' value labelled by the version of phonehome and the Go version it was built with.
# TYPE phonehome_build_info gauge
phonehome_build_info{goversion="go1.26.8",version="v1.2.3"} 1
# HELP phonehome_capture_packets_total Packets read from the capture source.
# TYPE phonehome_capture_packets_total counter
phonehome_capture_packets_total{source="file"} 183
# HELP phonehome_geoip_database_build_timestamp_seconds Build time of a GeoIP database in force (mmdb build_epoch).
# TYPE phonehome_geoip_database_build_timestamp_seconds gauge
phonehome_geoip_database_build_timestamp_seconds{database="embedded"} 1.7817228e+09
# HELP phonehome_hosts_phoning_home_after_deadline Hosts phoning home (last 24 hours) whose last contact came at or after their removal deadline.
# TYPE phonehome_hosts_phoning_home_after_deadline gauge
phonehome_hosts_phoning_home_after_deadline 2
# HELP phonehome_inventory_last_flush_duration_seconds Duration of the last write to the inventory store.
# TYPE phonehome_inventory_last_flush_duration_seconds gauge
phonehome_inventory_last_flush_duration_seconds 0.0015
# HELP phonehome_names_unseen_total ClientHellos whose server name the sensor could not read, by protocol and reason.
# TYPE phonehome_names_unseen_total counter
phonehome_names_unseen_total{protocol="quic",reason="undecryptable"} 2
phonehome_names_unseen_total{protocol="tls",reason="no_sni"} 1
# HELP phonehome_rules_last_reload_successful 1 if the last reload of the rules succeeded, else 0.
# TYPE phonehome_rules_last_reload_successful gauge
phonehome_rules_last_reload_successful 0
`
	names := []string{"phonehome_alerts_total", "phonehome_build_info", "phonehome_capture_packets_total",
		"phonehome_geoip_database_build_timestamp_seconds", "phonehome_hosts_phoning_home_after_deadline",
		"phonehome_inventory_last_flush_duration_seconds", "phonehome_names_unseen_total", "phonehome_rules_last_reload_successful"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// TestEveryMetric checks that a full snapshot shows every metric Names
// lists, and nothing else.
func TestEveryMetric(t *testing.T) {
	mfs, err := newRegistry(t, full()).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		got = append(got, mf.GetName())
	}
	if want := Names(); !slices.Equal(got, want) {
		t.Errorf("gathered %v\nwant Names() %v", got, want)
	}
	for _, n := range got {
		if !strings.HasPrefix(n, Namespace+"_") {
			t.Errorf("%s: not in namespace %s", n, Namespace)
		}
	}
}

// TestNoStore: without an inventory store the flush metrics are absent,
// not zero.
func TestNoStore(t *testing.T) {
	s := full()
	s.Flush = nil
	n, err := testutil.GatherAndCount(newRegistry(t, s), "phonehome_inventory_flushes_total")
	if err != nil || n != 0 {
		t.Errorf("phonehome_inventory_flushes_total: %d series (err %v), want none", n, err)
	}
}

// TestLint runs client_golang's promlint (the checks of promtool check
// metrics) over the sensor's metrics and the runtime collectors.
func TestLint(t *testing.T) {
	reg := newRegistry(t, full())
	if err := RegisterRuntime(reg); err != nil {
		t.Fatal(err)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestPromtoolCheckMetrics runs the real promtool over the exposition.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not found: install Debian's prometheus package (make deps)")
	}
	reg := newRegistry(t, full())
	if err := RegisterRuntime(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(prometheus.NewRegistry(), BuildInfo{}, nil); err == nil {
		t.Error("New with no snapshot function: no error")
	}
	reg := prometheus.NewRegistry()
	snap := func() Snapshot { return Snapshot{} }
	if _, err := New(reg, BuildInfo{}, snap); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, BuildInfo{}, snap); err == nil {
		t.Error("registering twice: no error")
	}
}
