// Command realcap is the traffic generator behind
// sensor/testdata/real/make-captures.sh: a test server and a test client
// that make real TLS, QUIC and HTTP handshakes between two network
// namespaces while tcpdump records them.
//
// It lives in its own module so that quic-go never enters the main
// module's go.mod.
//
//	realcap server [-addr :8443] [-http :8080] [-retry] [-spki-out FILE]
//	realcap client -mode tls|h3 -sni NAME -addr HOST:PORT [-alpn a,b]
//	realcap expect -dir DIR -manifest FILE -versions FILE -o expected.json
//
// server: a crypto/tls HTTPS server on TCP and a quic-go HTTP/3 server on
// UDP, both on -addr, with a self-signed certificate made at start; with
// -retry every QUIC connection attempt must first go through a Retry;
// -spki-out writes the base64 SHA-256 of the certificate's public key, for
// Chromium's --ignore-certificate-errors-spki-list. On
// -http a plain HTTP/1.1 server that also answers absolute-form proxy
// requests and CONNECT (200, then it reads what the client sends through
// the "tunnel" for up to two seconds and closes).
//
// client: mode tls dials with Go's crypto/tls and its default
// configuration (only ServerName, InsecureSkipVerify and, when given,
// NextProtos are set), so Go's default key shares, X25519MLKEM768 included,
// are sent; it then sends one HTTP/1.1 GET when ALPN allows it and reads
// the answer. Mode h3 does one HTTP/3 GET with quic-go.
//
// expect: runs tshark over every pcap named in the manifest and writes
// expected.json (see sensor/testdata/real/README.md for its format).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = serverMain(os.Args[2:])
	case "client":
		err = clientMain(os.Args[2:])
	case "expect":
		err = expectMain(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "realcap:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: realcap server|client|expect [flags]  (realcap MODE -h for flags)")
	os.Exit(2)
}
