package inventory

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
)

func TestReadAssets(t *testing.T) {
	in := `ip|mac,hostname,owner,site,removal_date
# comment
10.20.1.15, ws-0115, alice, hq, 2018-10-01
a4:bb:6d:14:00:1a,lab-01,,lab
fd00:20::1a,v6-host
`
	a, err := ReadAssets("assets.csv", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	as, ok := a.Lookup(netip.MustParseAddr("10.20.1.15"), "")
	if !ok || as.Hostname != "ws-0115" || as.Owner != "alice" || as.Site != "hq" || !as.Deadline.Equal(time.Date(2018, 10, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("by IP: %+v %v", as, ok)
	}
	if as, ok := a.Lookup(netip.MustParseAddr("10.9.9.9"), "A4-BB-6D-14-00-1A"); !ok || as.Hostname != "lab-01" || as.Site != "lab" {
		t.Fatalf("by MAC: %+v %v", as, ok)
	}
	for _, tt := range []struct{ in, want string }{
		{"10.1.1.1\n", "assets.csv:1: 1 fields"},
		{"10.1.1.1,a\nnot-an-ip,b\n", "assets.csv:2: \"not-an-ip\" is neither"},
		{"10.1.1.1,a,,,2018-13-01\n", "assets.csv:1: removal_date: bad date"},
		{"10.1.1.1,a\n10.1.1.1,b\n", "assets.csv:2: 10.1.1.1 listed twice"},
		{"10.1.1.1,\"a\n", "assets.csv:"},
	} {
		if _, err := ReadAssets("assets.csv", strings.NewReader(tt.in)); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: err %v, want prefix %q", tt.in, err, tt.want)
		}
	}
}

func TestDeadlinesAndOverdue(t *testing.T) {
	d0 := time.Date(2017, 12, 12, 0, 0, 0, 0, time.UTC)
	sub, err := ParseSubnetDeadline("10.20.7.0/24=2018-10-01")
	if err != nil {
		t.Fatal(err)
	}
	dl := NewDeadlines(d0, []SubnetDeadline{sub})
	if got := dl.For(netip.MustParseAddr("10.20.7.42")); !got.Equal(sub.Deadline) {
		t.Fatalf("subnet deadline: %v", got)
	}
	if got := dl.For(netip.MustParseAddr("10.20.1.15")); !got.Equal(d0) {
		t.Fatalf("global deadline: %v", got)
	}
	inv := New(Config{Deadlines: dl, Persist: true})
	r := &rules.Rule{ID: "r", Category: rules.CategoryUpdate}
	c := Contact{Time: time.Date(2018, 6, 1, 0, 0, 0, 0, time.UTC), Client: netip.MustParseAddr("10.20.7.42"), Hit: rules.Hit{Rule: r}, Name: "x.kaspersky.com"}
	if alert, overdue := inv.ObserveDeadline(c); !alert || overdue {
		t.Fatalf("before its subnet deadline: alert %v overdue %v", alert, overdue)
	}
	c.Time = time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, overdue := inv.ObserveDeadline(c); !overdue {
		t.Fatal("after the deadline: not overdue")
	}
	b, urgent := inv.TakeBatch()
	if !urgent || len(b.Hosts) != 1 || b.Hosts[0].Contacts != 2 || len(b.Evidence) != 2 || len(b.Daily) != 2 {
		t.Fatalf("batch %+v urgent %v", b, urgent)
	}
	if b2, urgent := inv.TakeBatch(); b2.Len() != 0 || urgent {
		t.Fatalf("second batch not empty: %+v", b2)
	}
}
