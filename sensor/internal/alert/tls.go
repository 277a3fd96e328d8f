package alert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
)

// ClientTLS builds a sink's TLS client configuration from its options:
// ca=FILE (PEM roots instead of the system's), cert=FILE and key=FILE (a
// client certificate), server-name= (the name to verify; default
// serverName, or the dialled host when that is empty too) and
// insecure-skip-verify=true (for tests only). A sink refuses, through
// Spec.Unknown, the options it does not take. TLS 1.2 at least.
func ClientTLS(q url.Values, serverName string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if v := q.Get("server-name"); v != "" {
		c.ServerName = v
	}
	if q.Has("insecure-skip-verify") {
		v := q.Get("insecure-skip-verify")
		skip, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("option insecure-skip-verify=%q: want true or false", v)
		}
		c.InsecureSkipVerify = skip
	}
	if q.Has("ca") {
		f := q.Get("ca")
		if f == "" {
			return nil, errors.New("option ca= is empty")
		}
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("option ca: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("option ca: no PEM certificate in %s", f)
		}
	}
	cert, key := q.Get("cert"), q.Get("key")
	if (cert == "") != (key == "") {
		return nil, errors.New("options cert and key go together")
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("options cert and key: %w", err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	return c, nil
}
