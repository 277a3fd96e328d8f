package testsvc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CertFiles are the PEM files Certs writes: a CA, and a server and a
// client certificate it signed, each with its key (PKCS #8).
type CertFiles struct {
	CA                    string // DIR/ca.pem
	Cert, Key             string // the server's: DIR/NAME.pem, DIR/NAME.key
	ClientCert, ClientKey string // the client's ("sensor"): DIR/sensor.pem, DIR/sensor.key
}

// Certs makes a CA valid for an hour either side of now, a server
// certificate for the DNS names (its common name the first; "localhost"
// when none is given) and 127.0.0.1, and a client certificate "sensor",
// and writes them to dir. Every call makes a new CA: one that did not
// sign a server's certificate is Certs(t, t.TempDir()).CA.
func Certs(t testing.TB, dir string, names ...string) *CertFiles {
	t.Helper()
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "phonehome test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	f := &CertFiles{CA: filepath.Join(dir, "ca.pem")}
	writePEM(t, f.CA, "CERTIFICATE", caDER)
	leaf := func(serial int64, names []string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certFile, keyFile = filepath.Join(dir, names[0]+".pem"), filepath.Join(dir, names[0]+".key")
		writePEM(t, certFile, "CERTIFICATE", der)
		writePEM(t, keyFile, "PRIVATE KEY", kder)
		return certFile, keyFile
	}
	f.Cert, f.Key = leaf(2, names, x509.ExtKeyUsageServerAuth)
	f.ClientCert, f.ClientKey = leaf(3, []string{"sensor"}, x509.ExtKeyUsageClientAuth)
	return f
}

// Pool returns a certificate pool that holds the CA.
func (f *CertFiles) Pool(t testing.TB) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("%s: no PEM certificate", f.CA)
	}
	return pool
}

// ServerCert returns the server's certificate and key, for a tls.Config.
func (f *CertFiles) ServerCert(t testing.TB) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
