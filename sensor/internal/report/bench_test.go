package report

import (
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/phonehome-sensor/phonehome/rules"
	"github.com/phonehome-sensor/phonehome/sensor/internal/inventory"
)

// BenchmarkReport100k: classify, sort and render 100,000 hosts.
func BenchmarkReport100k(b *testing.B) {
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	hosts := make([]inventory.Host, 100000)
	var daily []inventory.DayCount
	for i := range hosts {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		last := now.Add(-time.Duration(i%90) * 24 * time.Hour)
		hosts[i] = inventory.Host{
			IP: ip, Hostname: fmt.Sprintf("ws-%06d", i), FirstSeen: last.Add(-30 * 24 * time.Hour), LastSeen: last,
			Deadline: time.Date(2024, 9, 29, 0, 0, 0, 0, time.UTC), Contacts: uint64(i % 500),
			Categories: map[rules.Category]*inventory.Category{rules.CategoryUpdate: {First: last, Last: last, Count: 3}},
			Names:      []string{"dnl-01.geo.kaspersky.com"},
		}
		if i%10 == 0 {
			daily = append(daily, inventory.DayCount{IP: ip, Day: last.Truncate(24 * time.Hour), Category: rules.CategoryUpdate, Contacts: 3})
		}
	}
	for _, format := range []string{"table", "html"} {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r := Build(hosts, daily, Options{Now: now})
				var err error
				if format == "html" {
					err = r.WriteHTML(io.Discard)
				} else {
					err = r.WriteTable(io.Discard)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
