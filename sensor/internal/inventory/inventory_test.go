package inventory

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
)

var (
	prof   = &rules.Profile{ID: "kaspersky"}
	update = &rules.Rule{ID: "k-update", Profile: prof, Category: "update"}
	ksn    = &rules.Rule{ID: "k-ksn", Profile: prof, Category: "ksn-telemetry"}
	t0     = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
)

func contact(client string, at time.Time, r *rules.Rule, name string) Contact {
	return Contact{Time: at, Client: netip.MustParseAddr(client), Name: name, Protocol: "dns",
		Destination: netip.MustParseAddrPort("10.20.0.53:53"), Hit: rules.Hit{Rule: r, Kind: rules.KindDomain, Indicator: "kaspersky.com"}}
}

func TestDedupOneAlertPerHostRuleWindow(t *testing.T) {
	inv := New(Config{})
	steps := []struct {
		c    Contact
		want bool
	}{
		{contact("10.0.0.1", t0, update, "dnl-01.geo.kaspersky.com"), true},
		{contact("10.0.0.1", t0.Add(time.Hour), update, "dnl-02.geo.kaspersky.com"), false},   // same host, rule, day
		{contact("10.0.0.1", t0.Add(time.Hour), ksn, "ksn-url-geo.kaspersky-labs.com"), true}, // other rule
		{contact("10.0.0.2", t0.Add(time.Hour), update, "dnl-01.geo.kaspersky.com"), true},    // other host
		{contact("10.0.0.1", t0.Add(24*time.Hour), update, "dnl-01.geo.kaspersky.com"), true}, // next day
		{contact("10.0.0.1", t0.Add(25*time.Hour), update, "dnl-01.geo.kaspersky.com"), false},
	}
	for i, s := range steps {
		if got := inv.Observe(s.c); got != s.want {
			t.Errorf("step %d: alert = %v, want %v", i, got, s.want)
		}
	}
	st := inv.Stats()
	if st.Alerts != 4 || st.Suppressed != 2 || st.Contacts != 6 {
		t.Errorf("stats %+v", st)
	}
	hosts := inv.Hosts()
	if len(hosts) != 2 {
		t.Fatalf("%d hosts", len(hosts))
	}
	h := hosts[0]
	if h.IP.String() != "10.0.0.1" || h.Contacts != 5 || len(h.Categories) != 2 || len(h.Names) != 3 {
		t.Errorf("host %+v", h)
	}
	if !h.FirstSeen.Equal(t0) || !h.LastSeen.Equal(t0.Add(25*time.Hour)) {
		t.Errorf("first/last %v %v", h.FirstSeen, h.LastSeen)
	}
	if h.Categories["update"].Count != 4 || !h.Categories["ksn-telemetry"].First.Equal(t0.Add(time.Hour)) {
		t.Errorf("categories %+v", h.Categories)
	}
}

func TestHomeNets(t *testing.T) {
	inv := New(Config{HomeNets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	if !inv.Observe(contact("198.51.100.9", t0, update, "x.kaspersky.com")) {
		t.Error("external client not alerted")
	}
	inv.Observe(contact("192.0.2.10", t0, update, "x.kaspersky.com"))
	hosts := inv.Hosts()
	if len(hosts) != 1 || hosts[0].IP.String() != "192.0.2.10" {
		t.Errorf("hosts %+v", hosts)
	}
	if inv.Stats().ExternalClients != 1 {
		t.Errorf("stats %+v", inv.Stats())
	}
	def := New(Config{})
	for _, a := range []string{"10.1.2.3", "172.31.0.1", "192.168.1.1", "100.64.0.1", "fd00::1", "fe80::1"} {
		if !def.Internal(netip.MustParseAddr(a)) {
			t.Errorf("%s not internal by default", a)
		}
	}
	for _, a := range []string{"8.8.8.8", "172.32.0.1", "2001:db8::1"} {
		if def.Internal(netip.MustParseAddr(a)) {
			t.Errorf("%s internal by default", a)
		}
	}
}

func TestBounds(t *testing.T) {
	inv := New(Config{MaxHosts: 3, MaxNames: 2})
	for i := range 10 {
		inv.Observe(contact(fmt.Sprintf("10.0.0.%d", i+1), t0, update, fmt.Sprintf("n%d.kaspersky.com", i)))
	}
	for i := range 5 {
		inv.Observe(contact("10.0.0.1", t0, update, fmt.Sprintf("m%d.kaspersky.com", i)))
	}
	if inv.Len() != 3 || inv.Stats().HostsRefused != 7 {
		t.Errorf("len %d stats %+v", inv.Len(), inv.Stats())
	}
	h := inv.Hosts()[0]
	if len(h.Names) != 2 || h.NamesCut != 4 {
		t.Errorf("names %v cut %d", h.Names, h.NamesCut)
	}
}

func TestDedupStateBounded(t *testing.T) {
	inv := New(Config{DedupWindow: time.Hour})
	for i := range 100 {
		inv.Observe(contact("10.0.0.1", t0.Add(time.Duration(i)*time.Hour), update, "a.kaspersky.com"))
	}
	if n := len(inv.dedup); n > 2 {
		t.Errorf("dedup map holds %d keys after 100 windows", n)
	}
}
