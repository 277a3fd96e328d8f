package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// seen is what a capture holds, per client address.
type seen struct {
	packets int
	size    int
	lengths []int
	dns     map[string][]string // client -> question names (queries only)
	sni     map[string][]string // client -> names found in one-segment ClientHellos
	http    map[string][]string // client -> Host header values
	vlan    map[string]uint16   // source address -> VLAN id of its frames
	ipv6    int
	dnsTCP  int // TCP segments with a payload to or from port 53
}

var candidateSNI = []string{
	"dnl-03.geo.kaspersky.com", "ksn-url-geo.kaspersky-labs.com", "activation-v2.kaspersky.com",
	"dc1-file.ksn.kaspersky-labs.com", "s12.upd.kaspersky.com", "notkaspersky.com", "kasperskyupdate.com",
	"www.google.com", "login.microsoftonline.com", "github.com", "slack.com",
}

func read(t *testing.T, capture []byte) *seen {
	t.Helper()
	s := &seen{size: len(capture), dns: map[string][]string{}, sni: map[string][]string{}, http: map[string][]string{}, vlan: map[string]uint16{}}
	r, err := pcapgo.NewReader(bytes.NewReader(capture))
	if err != nil {
		t.Fatal(err)
	}
	last := Start
	for {
		data, ci, err := r.ReadPacketData()
		if err != nil {
			break
		}
		s.packets++
		s.lengths = append(s.lengths, len(data))
		if ci.Timestamp.Before(last) || ci.Timestamp.After(Start.Add(5*time.Minute)) {
			t.Fatalf("packet %d at %v", s.packets, ci.Timestamp)
		}
		last = ci.Timestamp
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			t.Fatalf("packet %d: %v", s.packets, el.Error())
		}
		src := p.NetworkLayer().NetworkFlow().Src()
		if _, ok := p.NetworkLayer().(*layers.IPv6); ok {
			s.ipv6++
		}
		if q, ok := p.Layer(layers.LayerTypeDot1Q).(*layers.Dot1Q); ok {
			s.vlan[src.String()] = q.VLANIdentifier
		}
		if d, ok := p.Layer(layers.LayerTypeDNS).(*layers.DNS); ok && !d.QR {
			s.dns[src.String()] = append(s.dns[src.String()], string(d.Questions[0].Name))
		}
		tcp, ok := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if !ok || len(tcp.Payload) == 0 {
			continue
		}
		pl := tcp.Payload
		switch {
		case tcp.DstPort == 53 || tcp.SrcPort == 53:
			s.dnsTCP++
		case tcp.DstPort == 443 && pl[0] == 0x16 && len(pl) == 5+int(pl[3])<<8+int(pl[4]):
			for _, n := range candidateSNI {
				if bytes.Contains(pl, []byte("\x00"+string(rune(len(n)>>8))+string(rune(len(n)))+n)) {
					s.sni[src.String()] = append(s.sni[src.String()], n)
				}
			}
		case tcp.DstPort == 80:
			for line := range strings.SplitSeq(string(pl), "\r\n") {
				if h, ok := strings.CutPrefix(line, "Host: "); ok {
					s.http[src.String()] = append(s.http[src.String()], h)
				}
			}
		}
	}
	return s
}

func TestDemo(t *testing.T) {
	var a, b bytes.Buffer
	if err := generate(&a); err != nil {
		t.Fatal(err)
	}
	if err := generate(&b); err != nil {
		t.Fatal(err)
	}
	s, s2 := read(t, a.Bytes()), read(t, b.Bytes())
	if s.size >= 100<<10 {
		t.Errorf("capture is %d bytes", s.size)
	}
	if !slices.Equal(s.lengths, s2.lengths) {
		t.Error("two runs differ in frame sizes")
	}
	want := map[string]struct{ dns, sni, http []string }{
		"10.20.1.15": {
			dns: []string{"dnl-03.geo.kaspersky.com", "ksn-url-geo.kaspersky-labs.com", "ds.kaspersky.com", "activation-v2.kaspersky.com", "dnl-03.geo.kaspersky.com"},
			sni: []string{"dnl-03.geo.kaspersky.com", "ksn-url-geo.kaspersky-labs.com", "activation-v2.kaspersky.com", "dnl-03.geo.kaspersky.com"},
		},
		"10.20.7.42":  {dns: []string{"time.windows.com"}, sni: []string{"dc1-file.ksn.kaspersky-labs.com"}, http: []string{"dnl-16.geo.kaspersky.com"}},
		"fd00:20::1a": {dns: []string{"s12.upd.kaspersky.com"}, sni: []string{"s12.upd.kaspersky.com"}},
		"10.20.2.21":  {dns: []string{"www.google.com", "notkaspersky.com"}, sni: []string{"notkaspersky.com"}},
		"10.20.2.37":  {dns: []string{"kaspersky.com.example", "login.microsoftonline.com"}},
		"10.20.3.8":   {dns: []string{"github.com", "mykaspersky-labs.com"}, http: []string{"mykaspersky-labs.com"}},
		"10.20.4.19":  {dns: []string{"slack.com.corp.acme.example", "slack.com", "kasperskyupdate.com"}, sni: []string{"kasperskyupdate.com"}},
		"10.20.5.33":  {dns: []string{"example.org"}, http: []string{"example.org"}},
		"10.20.6.50": {
			dns:  []string{"_ldap._tcp.dc._msdcs.corp.acme.example", hostileName}, // UDP only
			http: []string{"example.org"},
		},
	}
	for ip, w := range want {
		if got := s.dns[ip]; !slices.Equal(got, w.dns) {
			t.Errorf("%s DNS questions %q, want %q", ip, got, w.dns)
		}
		if got := s.sni[ip]; !slices.Equal(got, w.sni) {
			t.Errorf("%s one-segment SNIs %q, want %q", ip, got, w.sni)
		}
		if got := s.http[ip]; !slices.Equal(got, w.http) {
			t.Errorf("%s HTTP hosts %q, want %q", ip, got, w.http)
		}
	}
	for ip := range s.dns {
		if _, ok := want[ip]; !ok {
			t.Errorf("unexpected client %s", ip)
		}
	}
	if s.vlan["10.20.7.42"] != 120 {
		t.Error("10.20.7.42 is not on VLAN 120")
	}
	for ip, id := range s.vlan {
		if _, client := want[ip]; (client && ip != "10.20.7.42") || id != 120 {
			t.Errorf("%s tagged with VLAN %d", ip, id)
		}
	}
	if s.dnsTCP != 2 {
		t.Errorf("%d DNS-over-TCP segments with data, want a query and its answer", s.dnsTCP)
	}
	if s.ipv6 == 0 {
		t.Error("no IPv6 packets")
	}
	if !bytes.Contains(a.Bytes(), []byte("\x1b[31m")) || !bytes.Contains(a.Bytes(), []byte("</script>")) {
		t.Error("hostile User-Agent missing")
	}
}

// TestCommittedDemo checks that sensor/testdata/demo.pcap is what gendemo
// makes today, up to the random bytes of the ClientHellos: same frames,
// same sizes, same contents.
func TestCommittedDemo(t *testing.T) {
	committed, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "demo.pcap"))
	if err != nil {
		t.Skipf("no committed demo: %v", err)
	}
	var fresh bytes.Buffer
	if err := generate(&fresh); err != nil {
		t.Fatal(err)
	}
	a, b := read(t, committed), read(t, fresh.Bytes())
	if !slices.Equal(a.lengths, b.lengths) {
		t.Fatal("sensor/testdata/demo.pcap is stale: regenerate it with `make demo`")
	}
	for _, m := range []func(*seen) map[string][]string{
		func(s *seen) map[string][]string { return s.dns },
		func(s *seen) map[string][]string { return s.sni },
		func(s *seen) map[string][]string { return s.http },
	} {
		x, y := m(a), m(b)
		for k := range y {
			if !slices.Equal(x[k], y[k]) {
				t.Fatalf("sensor/testdata/demo.pcap is stale (%s): regenerate it with `make demo`", k)
			}
		}
	}
}
