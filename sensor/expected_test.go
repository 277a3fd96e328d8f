package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// sharedPcaps is the third-party capture corpus beside the repository
// (../shared/testdata/pcaps, with EXPECTED.json made by tshark). A user's
// clone does not have it: the tests that need it skip.
var sharedPcaps = filepath.Join("..", "..", "shared", "testdata", "pcaps")

// knownMisses lists the expected tuples phonehome cannot reproduce yet,
// each with the reason. The test fails when one of them starts to be
// reproduced, so the list cannot go stale.
var knownMisses = map[string]string{}

// Where the peers disagree (EXPECTED.json zeek_vs_tshark), phonehome
// chooses:
//   - quic-go retry.pcap: after the Retry the client sends its hello again
//     under a new DCID. Zeek logs two handshakes, tshark one; phonehome
//     reports both, as Zeek does: the second is a real new attempt and a
//     sensor that drops it would miss a client that only ever retries.
//     The tuple sets are the same.
//   - wikipedia.pcap: a request on a connection whose SYN was not
//     captured. tshark reports it, Zeek does not; phonehome does (a tap
//     started mid-connection must still see the next request).
//   - rdp-to-ssl.pcap: TLS inside RDP. Zeek reports the SNI, tshark does
//     not decode it; phonehome reads ClientHellos on any port and reports
//     it (knownExtras).
//
// knownExtras lists ClientHellos phonehome reports that tshark does
// not, each with why the report is right.
var knownExtras = map[string]string{
	// tshark does not dissect TLS inside RDP after the X.224 negotiation;
	// Zeek does and logs the same SNI (EXPECTED.json zeek_vs_tshark).
	"zeek/rdp/rdp-to-ssl.pcap tls 192.168.1.200 192.168.1.150 3389 192.168.1.150": "TLS inside RDP: Zeek reports it too",
}

type expectedFile struct {
	File    string `json:"file"`
	Capture struct {
		LinkTypes string `json:"link_types"`
	} `json:"capture"`
	Expect struct {
		DNS   [][]any `json:"dns"`
		TLS   [][]any `json:"tls"`
		HTTP  [][]any `json:"http"`
		QUIC  [][]any `json:"quic"`
		GQUIC [][]any `json:"gquic"`
	} `json:"expect"`
	Tshark struct {
		TLS []struct {
			Client      string  `json:"client"`
			Server      string  `json:"server"`
			ServerPort  int     `json:"server_port"`
			SNI         *string `json:"sni"`
			TCPSegments int     `json:"tcp_segments"`
		} `json:"tls"`
	} `json:"tshark"`
}

func loadExpected(t *testing.T) []expectedFile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(sharedPcaps, "EXPECTED.json"))
	if err != nil {
		t.Skipf("shared capture corpus not available (%v): this test runs where ../shared/testdata/pcaps exists", err)
	}
	var doc struct {
		Files []expectedFile `json:"files"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Files
}

// inspectEvents runs `phonehome inspect -r file` and returns its events.
func inspectEvents(t *testing.T, file string) []map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"inspect", "-r", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("inspect %s: exit %d: %s", file, code, stderr.String())
	}
	var evs []map[string]any
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("inspect %s: bad JSON line %q: %v", file, sc.Text(), err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func field(ev map[string]any, path string) any {
	var cur any = ev
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func str(v any) string {
	switch x := v.(type) {
	case nil:
		return "<nil>"
	case string:
		return x
	case float64:
		return fmt.Sprint(int64(x))
	}
	return fmt.Sprint(v)
}

// hostOnlyText strips the port and brackets of a Host header value.
func hostOnlyText(h string) string {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			return h[1:i]
		}
		return h
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		return h[:i]
	}
	return h
}

func TestExpectedTuples(t *testing.T) {
	files := loadExpected(t)
	reproduced := map[string]bool{}
	extrasSeen := map[string]bool{}
	var checked int
	for _, f := range files {
		// Every file runs, also those with nothing expected: what is
		// reported there must be shown right (knownExtras).
		t.Run(f.File, func(t *testing.T) {
			evs := inspectEvents(t, filepath.Join(sharedPcaps, f.File))
			dns := map[string]map[string]bool{} // client qname qtype → answers
			tls := map[string]bool{}
			quic := map[string]bool{}
			http := map[string]bool{}
			for _, ev := range evs {
				switch field(ev, "network.protocol") {
				case "dns":
					client := str(field(ev, "source.ip"))
					if field(ev, "dns.type") == "answer" {
						client = str(field(ev, "destination.ip"))
					}
					k := client + " " + str(field(ev, "dns.question.name")) + " " + str(field(ev, "dns.question.type"))
					if dns[k] == nil {
						dns[k] = map[string]bool{}
					}
					if as, ok := field(ev, "dns.answers").([]any); ok {
						for _, a := range as {
							am := a.(map[string]any)
							dns[k][strings.ToLower(str(am["type"])+" "+str(am["data"]))] = true
						}
					}
				case "tls":
					sni := field(ev, "tls.client.server_name")
					if sni == nil {
						sni = "<nil>"
					}
					tls[str(field(ev, "source.ip"))+" "+str(field(ev, "destination.ip"))+" "+str(field(ev, "destination.port"))+" "+str(sni)] = true
				case "quic":
					sni := field(ev, "tls.client.server_name")
					if sni == nil {
						sni = "<nil>"
					}
					quic[str(field(ev, "source.ip"))+" "+str(field(ev, "destination.ip"))+" "+str(field(ev, "destination.port"))+" "+str(sni)] = true
				case "http":
					http[str(field(ev, "source.ip"))+" "+str(field(ev, "url.domain"))] = true
				}
			}
			miss := func(key, what string) {
				if reason, ok := knownMisses[key]; ok {
					t.Logf("known miss: %s (%s)", key, reason)
					return
				}
				t.Errorf("not reproduced: %s (%s)", key, what)
			}
			for _, e := range f.Expect.DNS {
				checked++
				if e[1] == nil {
					continue // tshark could not decode the name: nothing to compare
				}
				k := fmt.Sprintf("%s %s %s", e[0], strings.ToLower(str(e[1])), str(e[2]))
				key := f.File + " dns " + k
				got, ok := dns[k]
				if !ok {
					miss(key, "no such query")
					continue
				}
				var missing []string
				for _, a := range e[3].([]any) {
					as := strings.ToLower(str(a))
					typ, _, _ := strings.Cut(as, " ")
					if typ != "a" && typ != "aaaa" && typ != "cname" {
						continue
					}
					if !got[as] {
						missing = append(missing, as)
					}
				}
				if len(missing) > 0 {
					miss(key, "answers missing: "+strings.Join(missing, ", "))
					continue
				}
				reproduced[key] = true
			}
			for _, e := range f.Expect.TLS {
				checked++
				sni := "<nil>"
				if e[3] != nil {
					sni = strings.ToLower(str(e[3]))
				}
				k := fmt.Sprintf("%s %s %s %s", e[0], e[1], str(e[2]), sni)
				key := f.File + " tls " + k
				if !tls[k] {
					miss(key, "no such ClientHello")
					continue
				}
				reproduced[key] = true
			}
			// gQUIC hellos are QUIC events too, with the gQUIC version.
			for _, e := range append(slices.Clone(f.Expect.QUIC), f.Expect.GQUIC...) {
				checked++
				sni := "<nil>"
				if e[3] != nil {
					sni = strings.ToLower(str(e[3]))
				}
				k := fmt.Sprintf("%s %s %s %s", e[0], e[1], str(e[2]), sni)
				key := f.File + " quic " + k
				if !quic[k] {
					miss(key, "no such QUIC ClientHello")
					continue
				}
				reproduced[key] = true
			}
			for _, e := range f.Expect.HTTP {
				checked++
				if e[1] == nil {
					continue
				}
				k := fmt.Sprintf("%s %s", e[0], strings.ToLower(hostOnlyText(str(e[1]))))
				key := f.File + " http " + k
				if !http[k] {
					miss(key, "no such request")
					continue
				}
				reproduced[key] = true
			}
			// Precision: a ClientHello tshark does not report must be
			// shown right in knownExtras.
			for _, kind := range []struct {
				name string
				got  map[string]bool
				want [][]any
			}{{"tls", tls, f.Expect.TLS}, {"quic", quic, append(slices.Clone(f.Expect.QUIC), f.Expect.GQUIC...)}} {
				want := map[string]bool{}
				for _, e := range kind.want {
					sni := "<nil>"
					if e[3] != nil {
						sni = strings.ToLower(str(e[3]))
					}
					want[fmt.Sprintf("%s %s %s %s", e[0], e[1], str(e[2]), sni)] = true
				}
				for k := range kind.got {
					if want[k] {
						continue
					}
					key := f.File + " " + kind.name + " " + k
					if reason, ok := knownExtras[key]; ok {
						t.Logf("extra, known right: %s (%s)", key, reason)
						extrasSeen[key] = true
						continue
					}
					t.Errorf("reported but not in EXPECTED.json: %s", key)
				}
			}
		})
	}
	for k := range knownExtras {
		if !extrasSeen[k] {
			t.Errorf("known extra no longer reported; remove it from knownExtras: %s", k)
		}
	}
	var stale []string
	for k := range knownMisses {
		if reproduced[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		t.Errorf("these known misses are now reproduced; remove them from knownMisses:\n%s", strings.Join(stale, "\n"))
	}
	t.Logf("%d expected tuples checked, %d reproduced, %d known misses", checked, len(reproduced), len(knownMisses))
}
