package main

import (
	"strings"
	"testing"
)

// TestRulesTestContacts: `rules test` matches whole contacts (every rule
// kind, combined rules too) besides names and addresses.
func TestRulesTestContacts(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"name=dnl-01.geo.kaspersky.com,addr=8.8.8.8,port=53/udp"},
			`name=dnl-01.geo.kaspersky.com,addr=8.8.8.8,port=53/udp: kaspersky/kaspersky-update-geo (update, high): domain suffix "geo.kaspersky.com"
name=dnl-01.geo.kaspersky.com,addr=8.8.8.8,port=53/udp: kaspersky/kaspersky-fallback-dns (fallback-dns, medium): domain suffix "geo.kaspersky.com" and address in 8.8.8.8/32 and port 53/udp
`},
		{[]string{"name=dnl-01.geo.kaspersky.com,addr=10.0.0.53,port=53/udp", "addr=8.8.8.8,port=53/udp"},
			`name=dnl-01.geo.kaspersky.com,addr=10.0.0.53,port=53/udp: kaspersky/kaspersky-update-geo (update, high): domain suffix "geo.kaspersky.com"
addr=8.8.8.8,port=53/udp: no match
`},
		{[]string{"country=RU", "AS200107", "asn=41983,country=ru,ua=Mozilla/5.0 (a, b)"},
			`country=RU: russian-hosted/russian-hosted-endpoint (country, low): country "RU"
AS200107: kaspersky/kaspersky-network-as200107 (network, low): address in AS200107
asn=41983,country=ru,ua=Mozilla/5.0 (a, b): kaspersky/kaspersky-network-as41983 (network, low): address in AS41983
asn=41983,country=ru,ua=Mozilla/5.0 (a, b): russian-hosted/russian-hosted-endpoint (country, low): country "RU"
`},
		// Names and addresses as before.
		{[]string{"S01.UPD.Kaspersky.com", "77.74.177.5"},
			`s01.upd.kaspersky.com: kaspersky/kaspersky-update (update, high): domain suffix "upd.kaspersky.com"
77.74.177.5: kaspersky/kaspersky-network-as41983 (network, low): address in 77.74.176.0/21
`},
	}
	for _, tt := range tests {
		code, stdout, stderr := runCLI(t, append([]string{"rules", "test"}, tt.args...)...)
		if code != 0 || stdout != tt.want {
			t.Errorf("rules test %q: exit %d, stderr %q, stdout:\n%s\nwant:\n%s", tt.args, code, stderr, stdout, tt.want)
		}
	}
	for _, bad := range []string{"port=53", "bogus=1", "addr=x", "asn=ASx", "name="} {
		code, stdout, stderr := runCLI(t, "rules", "test", bad)
		if code != 2 || stdout != "" || !strings.Contains(stderr, `rules test "`+bad+`"`) {
			t.Errorf("rules test %q: exit %d, stdout %q, stderr %q", bad, code, stdout, stderr)
		}
	}
}
