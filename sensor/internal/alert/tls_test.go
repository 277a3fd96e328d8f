package alert

import (
	"crypto/tls"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientTLS: the TLS options every network sink shares.
func TestClientTLS(t *testing.T) {
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o600)
	for _, tc := range []struct{ query, want string }{
		{"ca=" + notPEM, "no PEM certificate in " + notPEM},
		{"ca=/nonexistent.pem", "option ca: open /nonexistent.pem"},
		{"ca=", "option ca= is empty"},
		{"cert=x.pem", "options cert and key go together"},
		{"insecure-skip-verify=maybe", `insecure-skip-verify="maybe": want true or false`},
	} {
		q, _ := url.ParseQuery(tc.query)
		if _, err := ClientTLS(q, "h"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.query, err, tc.want)
		}
	}
	q, _ := url.ParseQuery("server-name=siem.example&insecure-skip-verify=true")
	c, err := ClientTLS(q, "10.0.0.1")
	if err != nil || c.ServerName != "siem.example" || !c.InsecureSkipVerify || c.MinVersion != tls.VersionTLS12 {
		t.Errorf("%+v %v", c, err)
	}
	if c, _ := ClientTLS(url.Values{}, "10.0.0.1"); c.ServerName != "10.0.0.1" || c.RootCAs != nil {
		t.Errorf("defaults: %+v", c)
	}
}
