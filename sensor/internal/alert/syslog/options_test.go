package syslog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leodido/go-syslog/v4/rfc5424"

	"github.com/phonehome-sensor/phonehome/sensor/internal/alert"
	"github.com/phonehome-sensor/phonehome/sensor/internal/testsvc"
)

func TestNew(t *testing.T) {
	certs := testsvc.Certs(t, t.TempDir())
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, tc := range []struct {
		raw      string
		wantErr  string // "": no error
		addr     string
		facility uint8
		maxSize  int
		tls      bool
	}{
		{raw: "syslog+udp://192.0.2.1", addr: "192.0.2.1:514", facility: 16, maxSize: 8192},
		{raw: "syslog+tcp://192.0.2.1", addr: "192.0.2.1:514", facility: 16, maxSize: 65536},
		{raw: "syslog+tls://logs.example", addr: "logs.example:6514", facility: 16, maxSize: 65536, tls: true},
		{raw: "syslog+tcp://[2001:db8::1]:1514?facility=LOCAL7&max-size=8192", addr: "[2001:db8::1]:1514", facility: 23, maxSize: 8192},
		{raw: "syslog+udp://h:5514?facility=4&max-size=65507&observations=0.5", addr: "h:5514", facility: 4, maxSize: 65507},
		{raw: "syslog+tls://h?ca=" + certs.CA + "&cert=" + certs.ClientCert + "&key=" + certs.ClientKey + "&server-name=x&insecure-skip-verify=false",
			addr: "h:6514", facility: 16, maxSize: 65536, tls: true},

		{raw: "syslog+tcp://h?foo=1", wantErr: `unknown option "foo"`},
		{raw: "syslog+tcp://h?ca=" + certs.CA, wantErr: `unknown option "ca"`},
		{raw: "syslog+udp://h?insecure-skip-verify=true", wantErr: `unknown option "insecure-skip-verify"`},
		{raw: "syslog+udp://h?facility=local8", wantErr: "facility"},
		{raw: "syslog+udp://h?facility=24", wantErr: "facility"},
		{raw: "syslog+udp://h?facility=-1", wantErr: "facility"},
		{raw: "syslog+udp://h?max-size=100", wantErr: "max-size"},
		{raw: "syslog+udp://h?max-size=65508", wantErr: "max-size"},
		{raw: "syslog+tcp://h?max-size=big", wantErr: "max-size"},
		{raw: "syslog+tcp://h:0", wantErr: "port"},
		{raw: "syslog+tcp://:514", wantErr: "no host"},
		{raw: "syslog+tcp://h:99999", wantErr: "port"},
		{raw: "syslog+tcp://h/path", wantErr: "without user or path"},
		{raw: "syslog+tcp://user:pw@h", wantErr: "without user or path"},
		{raw: "syslog+tls://h?insecure-skip-verify=maybe", wantErr: "insecure-skip-verify"},
		{raw: "syslog+tls://h?cert=" + certs.ClientCert, wantErr: "cert and key go together"},
		{raw: "syslog+tls://h?cert=" + certs.ClientCert + "&key=" + certs.CA, wantErr: "cert and key"},
		{raw: "syslog+tls://h?ca=/nonexistent/ca.pem", wantErr: "no such file"},
		{raw: "syslog+tls://h?ca=" + notPEM, wantErr: "no PEM certificate"},
		{raw: "syslog+quic://h", wantErr: "unknown scheme"},
	} {
		t.Run(strings.ReplaceAll(tc.raw, filepath.Dir(certs.CA), "DIR"), func(t *testing.T) {
			spec, err := alert.ParseSpec(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			s, err := New(spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.addr != tc.addr || s.facility != tc.facility || s.maxSize != tc.maxSize || (s.tls != nil) != tc.tls {
				t.Errorf("got addr %s facility %d max-size %d tls %v, want %s %d %d %v",
					s.addr, s.facility, s.maxSize, s.tls != nil, tc.addr, tc.facility, tc.maxSize, tc.tls)
			}
			if s.conn != nil {
				t.Error("New connected: the first Send should")
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		score int
		want  uint8
	}{
		{alert.KindAlert, 99, 2}, {alert.KindAlert, 74, 2},
		{alert.KindAlert, 73, 3}, {alert.KindAlert, 48, 3},
		{alert.KindAlert, 47, 4}, {alert.KindAlert, 21, 4}, {alert.KindAlert, 1, 4}, {alert.KindAlert, 0, 4},
		{alert.KindEvent, 0, 6}, {alert.KindEvent, 99, 6}, {"", 50, 6},
	} {
		e := &alert.Event{Event: alert.EventMeta{Kind: tc.kind, Severity: tc.score}}
		if got := severity(e); got != tc.want {
			t.Errorf("severity(%s, %d) = %d, want %d", tc.kind, tc.score, got, tc.want)
		}
	}
}

// TestHeader checks the header of messages with hostile or odd observer
// host names and timestamps, through go-syslog's strict parser.
func TestHeader(t *testing.T) {
	s := &Sink{facility: 16, procID: "42", host: "fallback"}
	for _, tc := range []struct {
		name, hostname, wantHost string
		ts                       string
		wantTS                   string // "": none ("-")
	}{
		{"plain", "sensor-1.example", "sensor-1.example", "2024-05-06T07:08:09.123456789Z", "2024-05-06T07:08:09.123456Z"},
		{"zone", "s", "s", "2024-05-06T09:08:09.5+02:00", "2024-05-06T09:08:09.5+02:00"},
		{"hostile", "a b\r\n<1>1 - x\x1b[31m\xff", "a_b___1_1_-_x__31m_", "2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"},
		{"ipv6", "2001:db8::1", "2001:db8::1", "2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"},
		{"too long", strings.Repeat("h", 300), strings.Repeat("h", 255), "2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"},
		{"empty", "", "fallback", "2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"},
		{"nil value", "-", "fallback", "2024-05-06T07:08:09Z", "2024-05-06T07:08:09Z"},
		{"year 10000", "s", "s", "+10000-01-01T00:00:00Z", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := testEvent(alert.KindAlert, 99, "x.example", tc.hostname)
			if tc.ts[0] == '+' {
				e.Timestamp = e.Timestamp.AddDate(10000-e.Timestamp.Year(), 0, 0)
			} else {
				var err error
				if e.Timestamp, err = timeParse(tc.ts); err != nil {
					t.Fatal(err)
				}
			}
			// The header alone: JSON cannot encode a year past 9999
			// (Send skips such events), but the header must not break.
			hdr, err := s.header(e)
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte(hdr + " {}")
			m, err := rfc5424.NewParser().Parse(msg)
			if err != nil {
				t.Fatalf("%v: %q", err, msg)
			}
			sm := m.(*rfc5424.SyslogMessage)
			if deref(sm.Hostname) != tc.wantHost {
				t.Errorf("hostname %v, want %q", deref(sm.Hostname), tc.wantHost)
			}
			if *sm.Priority != 16*8+2 || *sm.ProcID != "42" || *sm.MsgID != "alert" || *sm.Appname != "phonehome" {
				t.Errorf("header %q", msg)
			}
			hdrTS := strings.Fields(string(msg))[1]
			if tc.wantTS == "" && hdrTS != "-" || tc.wantTS != "" && hdrTS != tc.wantTS {
				t.Errorf("timestamp %q, want %q", hdrTS, tc.wantTS)
			}
			if !strings.HasSuffix(hdr, " -") || sm.Message == nil || *sm.Message != "{}" {
				t.Errorf("header %q does not end with the nil structured data", hdr)
			}
		})
	}
}

// BenchmarkAppendMessage formats one alert, as Send does for each event
// (the ECS JSON is encoded once per record, outside the loop).
func BenchmarkAppendMessage(b *testing.B) {
	s := &Sink{facility: 16, procID: "42"}
	r := alert.NewRecord(testEvent(alert.KindAlert, 99, "ksn-a.kaspersky-labs.com", "sensor-1"))
	buf, err := s.appendMessage(nil, r)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = s.appendMessage(buf[:0], r)
	}
}

func timeParse(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }
