package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Columns of the rows in expected.json. Cells are strings as tshark printed
// them ("" where it printed nothing), except ports, DNS query types and the
// segment and packet counts, which are numbers (see numeric). The last
// column of tls, quic and http says over how many TCP segments or QUIC
// packets the message was spread.
var columns = map[string][]string{
	"tls":  {"client", "server", "port", "sni", "alpn_list", "ja4", "clienthello_tcp_segments"},
	"quic": {"client", "server", "port", "sni", "alpn_list", "ja4", "quic_version", "clienthello_quic_packets"},
	"http": {"client", "host", "user_agent", "method", "request_uri", "server", "port", "head_tcp_segments"},
	"dns":  {"client", "server", "transport", "qname", "qtype"},
}

type fileResult struct {
	File         string
	MadeBy       string
	Notes        string
	Checks       string
	Frames       int
	RetryPackets int
	ClientInits  int
	ClientDCIDs  []string
	HelloDCIDs   [][]string
	Rows         map[string][][]string
}

func expectMain(args []string) error {
	fs := flag.NewFlagSet("expect", flag.ExitOnError)
	dir := fs.String("dir", ".", "directory holding the pcaps")
	manifest := fs.String("manifest", "", "TSV: file, checks, made_by, notes")
	versions := fs.String("versions", "", "key=value lines: tool versions")
	out := fs.String("o", "expected.json", "output file")
	tshark := fs.String("tshark", "tshark", "tshark binary")
	_ = fs.Parse(args)

	hasJA4 := false
	if b, err := exec.Command(*tshark, "-G", "fields").Output(); err == nil {
		hasJA4 = bytes.Contains(b, []byte("\ttls.handshake.ja4\t"))
	}

	mf, err := os.ReadFile(*manifest)
	if err != nil {
		return err
	}
	var results []fileResult
	var failed []string
	for _, line := range strings.Split(strings.TrimSpace(string(mf)), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return fmt.Errorf("manifest line has %d fields, want 4: %q", len(f), line)
		}
		r := fileResult{File: f[0], Checks: f[1], MadeBy: f[2], Notes: f[3], Rows: map[string][][]string{}}
		if err := analyse(*tshark, filepath.Join(*dir, r.File), hasJA4, &r); err != nil {
			return fmt.Errorf("%s: %w", r.File, err)
		}
		for _, msg := range check(&r) {
			failed = append(failed, r.File+": "+msg)
		}
		results = append(results, r)
	}

	var vers [][2]string
	if *versions != "" {
		vb, err := os.ReadFile(*versions)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(strings.TrimSpace(string(vb)), "\n") {
			k, v, ok := strings.Cut(l, "=")
			if ok {
				vers = append(vers, [2]string{k, strings.TrimSpace(v)})
			}
		}
	}
	if err := os.WriteFile(*out, render(results, vers, hasJA4), 0o644); err != nil {
		return err
	}
	if len(failed) > 0 {
		return errors.New("checks failed:\n  " + strings.Join(failed, "\n  "))
	}
	return nil
}

// tsharkFields runs tshark with a display filter and returns one []string
// per frame; multiple occurrences of a field are joined with "|".
func tsharkFields(tshark, pcap, filter string, fields ...string) ([][]string, error) {
	args := []string{"-r", pcap, "-n",
		"-d", "tcp.port==8443,tls", "-d", "udp.port==8443,quic",
		"-Y", filter, "-T", "fields",
		"-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|", "-E", "quote=n"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(tshark, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("tshark %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	var rows [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		if l == "" {
			continue
		}
		row := strings.Split(l, "\t")
		for len(row) < len(fields) {
			row = append(row, "")
		}
		rows = append(rows, row)
	}
	return rows, sc.Err()
}

func first(s string) string { v, _, _ := strings.Cut(s, "|"); return v }

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// distinct counts the distinct values of a "|"-joined list (1 if empty:
// a message that needed no reassembly sat in one segment or packet).
func distinct(s string) string {
	if s == "" {
		return "1"
	}
	seen := map[string]bool{}
	for _, v := range strings.Split(s, "|") {
		seen[v] = true
	}
	return strconv.Itoa(len(seen))
}

func analyse(tshark, pcap string, hasJA4 bool, r *fileResult) error {
	ja4 := "frame.number" // placeholder column when tshark has no JA4 field
	if hasJA4 {
		ja4 = "tls.handshake.ja4"
	}
	all, err := tsharkFields(tshark, pcap, "frame", "frame.number")
	if err != nil {
		return err
	}
	r.Frames = len(all)

	tlsRows, err := tsharkFields(tshark, pcap, "tcp && tls.handshake.type==1",
		"ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "tcp.dstport",
		"tls.handshake.extensions_server_name", "tls.handshake.extensions_alpn_str", ja4, "tcp.segment")
	if err != nil {
		return err
	}
	for _, t := range tlsRows {
		j := ""
		if hasJA4 {
			j = first(t[7])
		}
		r.Rows["tls"] = append(r.Rows["tls"], []string{
			or(t[0], t[1]), or(t[2], t[3]), first(t[4]), first(t[5]),
			strings.ReplaceAll(t[6], "|", ","), j, distinct(t[8])})
	}

	quicRows, err := tsharkFields(tshark, pcap, "quic && tls.handshake.type==1",
		"ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "udp.dstport",
		"tls.handshake.extensions_server_name", "tls.handshake.extensions_alpn_str", ja4, "quic.version", "quic.crypto.fragment",
		"frame.number")
	if err != nil {
		return err
	}
	clients := map[string]bool{}
	var helloFrames [][]string // per ClientHello: the frames it was reassembled from
	for _, q := range quicRows {
		j := ""
		if hasJA4 {
			j = first(q[7])
		}
		client := or(q[0], q[1])
		clients[client] = true
		r.Rows["quic"] = append(r.Rows["quic"], []string{
			client, or(q[2], q[3]), first(q[4]), first(q[5]),
			strings.ReplaceAll(q[6], "|", ","), j, first(q[8]), distinct(q[9])})
		frames := []string{q[10]}
		if q[9] != "" {
			frames = strings.Split(q[9], "|")
		}
		helloFrames = append(helloFrames, frames)
	}
	if len(quicRows) > 0 {
		// Long-header packets: Retries, and the client's Initials with
		// the DCID each one carries (it changes after a Retry, and after
		// the server's first Initial when that arrives mid-ClientHello).
		long, err := tsharkFields(tshark, pcap, "quic.long.packet_type", "quic.long.packet_type", "ip.src", "ipv6.src", "quic.dcid", "frame.number")
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		dcidOf := map[string]string{}
		for _, l := range long {
			dcidOf[l[4]] = first(l[3])
			switch first(l[0]) {
			case "3":
				r.RetryPackets++
			case "0":
				if clients[or(l[1], l[2])] {
					r.ClientInits++
					if d := first(l[3]); !seen[d] {
						seen[d] = true
						r.ClientDCIDs = append(r.ClientDCIDs, d)
					}
				}
			}
		}
		for _, frames := range helloFrames {
			var dcids []string
			got := map[string]bool{}
			for _, f := range frames {
				if d := dcidOf[f]; !got[d] {
					got[d] = true
					dcids = append(dcids, d)
				}
			}
			r.HelloDCIDs = append(r.HelloDCIDs, dcids)
		}
	}

	httpRows, err := tsharkFields(tshark, pcap, "http.request",
		"ip.src", "ipv6.src", "http.host", "http.user_agent", "http.request.method", "http.request.uri",
		"ip.dst", "ipv6.dst", "tcp.dstport", "tcp.segment")
	if err != nil {
		return err
	}
	for _, h := range httpRows {
		r.Rows["http"] = append(r.Rows["http"], []string{
			or(h[0], h[1]), h[2], h[3], h[4], h[5], or(h[6], h[7]), first(h[8]), distinct(h[9])})
	}

	dnsRows, err := tsharkFields(tshark, pcap, "dns && dns.flags.response==0",
		"ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "udp.dstport", "dns.qry.name", "dns.qry.type")
	if err != nil {
		return err
	}
	for _, d := range dnsRows {
		tr := "tcp"
		if d[4] != "" {
			tr = "udp"
		}
		r.Rows["dns"] = append(r.Rows["dns"], []string{or(d[0], d[1]), or(d[2], d[3]), tr, first(d[5]), first(d[6])})
	}
	return nil
}

// check evaluates the manifest's checks, a ";"-separated list of
// NAME>=N where NAME is tls, quic, http, dns (row counts),
// tls_segments, quic_packets, http_segments (the largest value of the last
// column), retry, client_initials or hello_dcids (the most DCIDs seen among
// the Initials that carried one ClientHello).
func check(r *fileResult) []string {
	var msgs []string
	if r.Checks == "" || r.Checks == "-" {
		return nil
	}
	maxLast := func(kind string) int {
		m := 0
		for _, row := range r.Rows[kind] {
			if n, _ := strconv.Atoi(row[len(row)-1]); n > m {
				m = n
			}
		}
		return m
	}
	for _, c := range strings.Split(r.Checks, ";") {
		name, want, ok := strings.Cut(c, ">=")
		n, err := strconv.Atoi(want)
		if !ok || err != nil {
			msgs = append(msgs, "bad check "+c)
			continue
		}
		var got int
		switch name {
		case "tls", "quic", "http", "dns":
			got = len(r.Rows[name])
		case "tls_segments":
			got = maxLast("tls")
		case "quic_packets":
			got = maxLast("quic")
		case "http_segments":
			got = maxLast("http")
		case "retry":
			got = r.RetryPackets
		case "client_initials":
			got = r.ClientInits
		case "hello_dcids":
			for _, d := range r.HelloDCIDs {
				got = max(got, len(d))
			}
		default:
			msgs = append(msgs, "unknown check "+c)
			continue
		}
		if got < n {
			msgs = append(msgs, fmt.Sprintf("%s: got %d, want >= %d", name, got, n))
		}
	}
	return msgs
}

// numeric tells the columns written as JSON numbers.
func numeric(col string) bool {
	return col == "port" || col == "qtype" || strings.HasSuffix(col, "_segments") || strings.HasSuffix(col, "_packets")
}

// jsRow writes a row with its numeric columns as numbers.
func jsRow(kind string, row []string) string {
	cells := make([]any, len(row))
	for i, c := range row {
		cells[i] = c
		if n, err := strconv.Atoi(c); err == nil && numeric(columns[kind][i]) {
			cells[i] = n
		}
	}
	return js(cells)
}

func js(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// render writes expected.json by hand so that each row stays on one line.
func render(results []fileResult, vers [][2]string, hasJA4 bool) []byte {
	var b strings.Builder
	b.WriteString("{\n")
	b.WriteString(`  "generated_by": "sensor/testdata/real/make-captures.sh (tools/realcap expect)",` + "\n")
	ja4 := "tshark has no tls.handshake.ja4 field (Wireshark < 4.2): ja4 left empty"
	if hasJA4 {
		ja4 = "ja4 from tshark's tls.handshake.ja4"
	}
	b.WriteString(`  "ja4": ` + js(ja4) + ",\n")
	b.WriteString("  \"versions\": {")
	for i, kv := range vers {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n    " + js(kv[0]) + ": " + js(kv[1]))
	}
	b.WriteString("\n  },\n  \"columns\": {")
	kinds := []string{"tls", "quic", "http", "dns"}
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n    " + js(k) + ": " + js(columns[k]))
	}
	b.WriteString("\n  },\n  \"files\": [")
	for i, r := range results {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n    {\n")
		b.WriteString("      \"file\": " + js(r.File) + ",\n")
		b.WriteString("      \"made_by\": " + js(r.MadeBy) + ",\n")
		b.WriteString("      \"frames\": " + strconv.Itoa(r.Frames) + ",\n")
		if len(r.Rows["quic"]) > 0 {
			b.WriteString("      \"quic_client_initial_packets\": " + strconv.Itoa(r.ClientInits) + ",\n")
			b.WriteString("      \"quic_client_initial_dcids\": " + js(r.ClientDCIDs) + ",\n")
			b.WriteString("      \"quic_clienthello_dcids\": " + js(r.HelloDCIDs) + ",\n")
			b.WriteString("      \"quic_retry_packets\": " + strconv.Itoa(r.RetryPackets) + ",\n")
		}
		present := []string{}
		for _, k := range kinds {
			if len(r.Rows[k]) > 0 || k != "dns" {
				present = append(present, k)
			}
		}
		for _, k := range present {
			b.WriteString("      " + js(k) + ": [")
			for j, row := range r.Rows[k] {
				if j > 0 {
					b.WriteString(",")
				}
				b.WriteString("\n        " + jsRow(k, row))
			}
			if len(r.Rows[k]) > 0 {
				b.WriteString("\n      ")
			}
			b.WriteString("],\n")
		}
		b.WriteString("      \"checks\": " + js(r.Checks) + ",\n")
		b.WriteString("      \"notes\": " + js(r.Notes) + "\n    }")
	}
	b.WriteString("\n  ]\n}\n")
	return []byte(b.String())
}
