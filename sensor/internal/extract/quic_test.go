package extract

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// --- RFC test vectors --------------------------------------------------------

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// rfcDCID is the client's DCID in RFC 9001 Appendix A and RFC 9369
// Appendix A.
const rfcDCID = "8394c8f03e515708"

// rfcCryptoFrame is the CRYPTO frame of the client Initial in RFC 9001 A.2
// (and RFC 9369 A.2): offset 0, length 0xf1, a ClientHello for
// example.com. The packet payload is this frame and 917 bytes of PADDING.
const rfcCryptoFrame = `
060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
616d706c652e636f6dff01000100000a00080006001d00170018001000070005
04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
0d0010000e0403050306030203080408050806002d00020101001c0002400100
3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
75300901100f088394c8f03e51570806048000ffff`

// rfc9001ClientInitial is the protected client Initial of RFC 9001 A.2.
const rfc9001ClientInitial = `
c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11
d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399
1c260ec4c60d17b31f8429157bb35a1282a643a8d2262cad67500cadb8e7378c
8eb7539ec4d4905fed1bee1fc8aafba17c750e2c7ace01e6005f80fcb7df6212
30c83711b39343fa028cea7f7fb5ff89eac2308249a02252155e2347b63d58c5
457afd84d05dfffdb20392844ae812154682e9cf012f9021a6f0be17ddd0c208
4dce25ff9b06cde535d0f920a2db1bf362c23e596d11a4f5a6cf3948838a3aec
4e15daf8500a6ef69ec4e3feb6b1d98e610ac8b7ec3faf6ad760b7bad1db4ba3
485e8a94dc250ae3fdb41ed15fb6a8e5eba0fc3dd60bc8e30c5c4287e53805db
059ae0648db2f64264ed5e39be2e20d82df566da8dd5998ccabdae053060ae6c
7b4378e846d29f37ed7b4ea9ec5d82e7961b7f25a9323851f681d582363aa5f8
9937f5a67258bf63ad6f1a0b1d96dbd4faddfcefc5266ba6611722395c906556
be52afe3f565636ad1b17d508b73d8743eeb524be22b3dcbc2c7468d54119c74
68449a13d8e3b95811a198f3491de3e7fe942b330407abf82a4ed7c1b311663a
c69890f4157015853d91e923037c227a33cdd5ec281ca3f79c44546b9d90ca00
f064c99e3dd97911d39fe9c5d0b23a229a234cb36186c4819e8b9c5927726632
291d6a418211cc2962e20fe47feb3edf330f2c603a9d48c0fcb5699dbfe58964
25c5bac4aee82e57a85aaf4e2513e4f05796b07ba2ee47d80506f8d2c25e50fd
14de71e6c418559302f939b0e1abd576f279c4b2e0feb85c1f28ff18f58891ff
ef132eef2fa09346aee33c28eb130ff28f5b766953334113211996d20011a198
e3fc433f9f2541010ae17c1bf202580f6047472fb36857fe843b19f5984009dd
c324044e847a4f4a0ab34f719595de37252d6235365e9b84392b061085349d73
203a4a13e96f5432ec0fd4a1ee65accdd5e3904df54c1da510b0ff20dcc0c77f
cb2c0e0eb605cb0504db87632cf3d8b4dae6e705769d1de354270123cb11450e
fc60ac47683d7b8d0f811365565fd98c4c8eb936bcab8d069fc33bd801b03ade
a2e1fbc5aa463d08ca19896d2bf59a071b851e6c239052172f296bfb5e724047
90a2181014f3b94a4e97d117b438130368cc39dbb2d198065ae3986547926cd2
162f40a29f0c3c8745c0f50fba3852e566d44575c29d39a03f0cda721984b6f4
40591f355e12d439ff150aab7613499dbd49adabc8676eef023b15b65bfc5ca0
6948109f23f350db82123535eb8a7433bdabcb909271a6ecbcb58b936a88cd4e
8f2e6ff5800175f113253d8fa9ca8885c2f552e657dc603f252e1a8e308f76f0
be79e2fb8f5d5fbbe2e30ecadd220723c8c0aea8078cdfcb3868263ff8f09400
54da48781893a7e49ad5aff4af300cd804a6b6279ab3ff3afb64491c85194aab
760d58a606654f9f4400e8b38591356fbf6425aca26dc85244259ff2b19c41b9
f96f3ca9ec1dde434da7d2d392b905ddf3d1f9af93d1af5950bd493f5aa731b4
056df31bd267b6b90a079831aaf579be0a39013137aac6d404f518cfd4684064
7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241
e221af44860018ab0856972e194cd934`

// rfc9369ClientInitial is the protected client Initial of RFC 9369 A.2
// (QUIC version 2), with the same payload.
const rfc9369ClientInitial = `
d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485
dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04
9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d
250f2c4f0e0202b70785b7946e992e58a59ac52dea6774d4f03b55545243cf1a
12834e3f249a78d395e0d18f4d766004f1a2674802a747eaa901c3f10cda5500
cb9122faa9f1df66c392079a1b40f0de1c6054196a11cbea40afb6ef5253cd68
18f6625efce3b6def6ba7e4b37a40f7732e093daa7d52190935b8da58976ff33
12ae50b187c1433c0f028edcc4c2838b6a9bfc226ca4b4530e7a4ccee1bfa2a3
d396ae5a3fb512384b2fdd851f784a65e03f2c4fbe11a53c7777c023462239dd
6f7521a3f6c7d5dd3ec9b3f233773d4b46d23cc375eb198c63301c21801f6520
bcfb7966fc49b393f0061d974a2706df8c4a9449f11d7f3d2dcbb90c6b877045
636e7c0c0fe4eb0f697545460c806910d2c355f1d253bc9d2452aaa549e27a1f
ac7cf4ed77f322e8fa894b6a83810a34b361901751a6f5eb65a0326e07de7c12
16ccce2d0193f958bb3850a833f7ae432b65bc5a53975c155aa4bcb4f7b2c4e5
4df16efaf6ddea94e2c50b4cd1dfe06017e0e9d02900cffe1935e0491d77ffb4
fdf85290fdd893d577b1131a610ef6a5c32b2ee0293617a37cbb08b847741c3b
8017c25ca9052ca1079d8b78aebd47876d330a30f6a8c6d61dd1ab5589329de7
14d19d61370f8149748c72f132f0fc99f34d766c6938597040d8f9e2bb522ff9
9c63a344d6a2ae8aa8e51b7b90a4a806105fcbca31506c446151adfeceb51b91
abfe43960977c87471cf9ad4074d30e10d6a7f03c63bd5d4317f68ff325ba3bd
80bf4dc8b52a0ba031758022eb025cdd770b44d6d6cf0670f4e990b22347a7db
848265e3e5eb72dfe8299ad7481a408322cac55786e52f633b2fb6b614eaed18
d703dd84045a274ae8bfa73379661388d6991fe39b0d93debb41700b41f90a15
c4d526250235ddcd6776fc77bc97e7a417ebcb31600d01e57f32162a8560cacc
7e27a096d37a1a86952ec71bd89a3e9a30a2a26162984d7740f81193e8238e61
f6b5b984d4d3dfa033c1bb7e4f0037febf406d91c0dccf32acf423cfa1e70710
10d3f270121b493ce85054ef58bada42310138fe081adb04e2bd901f2f13458b
3d6758158197107c14ebb193230cd1157380aa79cae1374a7c1e5bbcb80ee23e
06ebfde206bfb0fcbc0edc4ebec309661bdd908d532eb0c6adc38b7ca7331dce
8dfce39ab71e7c32d318d136b6100671a1ae6a6600e3899f31f0eed19e3417d1
34b90c9058f8632c798d4490da4987307cba922d61c39805d072b589bd52fdf1
e86215c2d54e6670e07383a27bbffb5addf47d66aa85a0c6f9f32e59d85a44dd
5d3b22dc2be80919b490437ae4f36a0ae55edf1d0b5cb4e9a3ecabee93dfc6e3
8d209d0fa6536d27a5d6fbb17641cde27525d61093f1b28072d111b2b4ae5f89
d5974ee12e5cf7d5da4d6a31123041f33e61407e76cffcdcfd7e19ba58cf4b53
6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19
9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b
a18b2faa745b6fe189cf772a9f84cbfc`

// rfcHello is the ClientHello of the RFC vectors (the CRYPTO frame's data).
func rfcHello(tb testing.TB) []byte { return unhex(tb, rfcCryptoFrame)[4:] }

func TestQUICKeyDerivationRFC(t *testing.T) {
	for _, tc := range []struct {
		name       string
		version    uint32
		iv, sample string
		mask, key  string
	}{
		// RFC 9001 A.1/A.2: client key, iv, and the header protection
		// mask of the packet's sample (the hp key hides in the block).
		{name: "v1", version: quicV1, iv: "fa044b2f42a3fd3b46fb255c",
			sample: "d1b1c98dd7689fb8ec11d242b123dc9b", mask: "437b9aec36", key: "1f369613dd76d5467730efcbe3b1a22d"},
		// RFC 9369 A.1/A.2.
		{name: "v2", version: quicV2, iv: "91f73e2351d8fa91660e909f",
			sample: "ffe67b6abcdb4298b485dd04de806071", mask: "94a0c95e80", key: "8b1a0bc121284290a29e0971b5cd045d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var k quicKeys
			if err := deriveQUICKeys(&k, tc.version, unhex(t, rfcDCID)); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(k.iv[:]); got != tc.iv {
				t.Errorf("iv %s, want %s", got, tc.iv)
			}
			var mask [16]byte
			k.hp.Encrypt(mask[:], unhex(t, tc.sample))
			if got := hex.EncodeToString(mask[:5]); got != tc.mask {
				t.Errorf("mask %s, want %s", got, tc.mask)
			}
			// The AEAD hides its key: compare a seal with one made
			// with the RFC's key.
			block, err := aes.NewCipher(unhex(t, tc.key))
			if err != nil {
				t.Fatal(err)
			}
			ref, err := cipher.NewGCM(block)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := k.aead.Seal(nil, k.iv[:], []byte("x"), nil), ref.Seal(nil, k.iv[:], []byte("x"), nil); !bytes.Equal(got, want) {
				t.Errorf("AEAD key differs from the RFC's")
			}
		})
	}
}

func TestQUICRFCVectors(t *testing.T) {
	for _, tc := range []struct {
		name, packet, version string
	}{
		{"RFC 9001 A.2", rfc9001ClientInitial, "1"},
		{"RFC 9369 A.2", rfc9369ClientInitial, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := unhex(t, tc.packet)
			if len(p) != 1200 {
				t.Fatalf("vector is %d bytes, want 1200", len(p))
			}
			orig := slices.Clone(p)
			if !IsQUICInitial(p) {
				t.Fatal("IsQUICInitial = false")
			}
			var a QUICAssembler
			if err := a.AddDatagram(p); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p, orig) {
				t.Fatal("AddDatagram modified its input")
			}
			if a.VersionName() != tc.version {
				t.Errorf("VersionName %q, want %q", a.VersionName(), tc.version)
			}
			// The whole plaintext payload is the CRYPTO frame and PADDING.
			want := append(unhex(t, rfcCryptoFrame), make([]byte, 917)...)
			if !bytes.Equal(a.plain[:len(want)], want) {
				t.Errorf("payload differs from the RFC's")
			}
			hello := a.ClientHello()
			if !bytes.Equal(hello, rfcHello(t)) {
				t.Fatalf("ClientHello %x", hello)
			}
			var h ClientHello
			if err := ParseClientHelloMessage(hello, &h); err != nil {
				t.Fatal(err)
			}
			if string(h.SNI) != "example.com" || string(h.ALPN) != "\x04alpn" || !h.OffersTLS13 {
				t.Errorf("SNI %q ALPN %q TLS13 %v", h.SNI, h.ALPN, h.OffersTLS13)
			}
			st := a.Stats()
			if st.Initials != 1 || st.Decrypted != 1 || st.KeyDerivations != 1 {
				t.Errorf("stats %+v", st)
			}
			// The same packet again: keys cached, nothing new.
			if err := a.AddDatagram(p); err != nil || a.Stats().KeyDerivations != 1 {
				t.Errorf("again: %v, %+v", err, a.Stats())
			}
		})
	}
}

// --- captures ------------------------------------------------------------------

const pcapDir = "../../../../shared/testdata/pcaps"

type datagram struct {
	src, dst netip.AddrPort
	payload  []byte
}

// readDatagrams returns the UDP datagrams of a capture (pcap or pcapng;
// Ethernet, PPP, raw IP…), with the innermost IP header's addresses.
func readDatagrams(tb testing.TB, path string) []datagram {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		tb.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		tb.Fatal(err)
	}
	type source interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
		LinkType() layers.LinkType
	}
	var r source
	if binary.BigEndian.Uint32(magic[:]) == 0x0a0d0d0a {
		r, err = pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	} else {
		r, err = pcapgo.NewReader(f)
	}
	if err != nil {
		tb.Fatal(err)
	}
	var out []datagram
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		var src, dst netip.Addr
		var udp *layers.UDP
		for _, l := range pkt.Layers() {
			switch l := l.(type) {
			case *layers.IPv4:
				src, _ = netip.AddrFromSlice(l.SrcIP)
				dst, _ = netip.AddrFromSlice(l.DstIP)
			case *layers.IPv6:
				src, _ = netip.AddrFromSlice(l.SrcIP)
				dst, _ = netip.AddrFromSlice(l.DstIP)
			case *layers.UDP:
				udp = l
			}
		}
		if udp == nil || !src.IsValid() {
			continue
		}
		out = append(out, datagram{
			src:     netip.AddrPortFrom(src.Unmap(), uint16(udp.SrcPort)),
			dst:     netip.AddrPortFrom(dst.Unmap(), uint16(udp.DstPort)),
			payload: slices.Clone(udp.Payload),
		})
	}
	return out
}

// expectedFile is the part of EXPECTED.json the QUIC tests read.
type expectedFile struct {
	File   string             `json:"file"`
	Expect map[string][][]any `json:"expect"`
}

func readExpected(tb testing.TB) map[string]expectedFile {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(pcapDir, "EXPECTED.json"))
	if err != nil {
		tb.Skipf("capture corpus not available (%v): skipping the real-capture checks", err)
	}
	var doc struct {
		Files []expectedFile `json:"files"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		tb.Fatal(err)
	}
	m := make(map[string]expectedFile)
	for _, f := range doc.Files {
		m[f.File] = f
	}
	return m
}

// tupleKey renders an EXPECTED.json tuple [client, server, port, sni|null].
func tupleKey(kind string, t []any) string {
	sni := "<none>"
	if s, ok := t[3].(string); ok {
		sni = s
	}
	return fmt.Sprintf("%s %v %v %v %s", kind, t[0], t[1], t[2], sni)
}

// flowResult is what the capture walk found.
type flowResult struct {
	tuples map[string]bool
	stats  QUICStats
	errs   map[string]int
}

// walkCapture runs the datagrams through an assembler per directional UDP
// 5-tuple, as the pipeline will, and collects the hellos' SNIs.
func walkCapture(t *testing.T, dgs []datagram) flowResult {
	res := flowResult{tuples: map[string]bool{}, errs: map[string]int{}}
	flows := map[[2]netip.AddrPort]*QUICAssembler{}
	var h ClientHello
	for _, d := range dgs {
		if !IsQUICInitial(d.payload) {
			sni, _, err := ParseGQUICCHLO(d.payload)
			if err == nil {
				t := []any{d.src.Addr().String(), d.dst.Addr().String(), float64(d.dst.Port()), nil}
				if sni != nil {
					t[3] = string(sni)
				}
				res.tuples[tupleKey("gquic", t)] = true
			}
			continue
		}
		key := [2]netip.AddrPort{d.src, d.dst}
		a := flows[key]
		if a == nil {
			a = new(QUICAssembler)
			flows[key] = a
		}
		err := a.AddDatagram(d.payload)
		res.errs[fmt.Sprint(err)]++
		var sni []byte
		hello, chlo := a.ClientHello(), a.CHLO()
		switch {
		case hello != nil:
			if err := ParseClientHelloMessage(hello, &h); err != nil {
				t.Errorf("%v: assembled hello does not parse: %v", key, err)
				a.Done()
				continue
			}
			sni = h.SNI
		case chlo != nil:
			var err error
			if sni, err = ParseGQUICCHLOMessage(chlo); err != nil {
				t.Errorf("%v: assembled CHLO does not parse: %v", key, err)
			}
		default:
			continue
		}
		a.Done()
		tu := []any{d.src.Addr().String(), d.dst.Addr().String(), float64(d.dst.Port()), nil}
		if sni != nil {
			tu[3] = string(sni)
		}
		res.tuples[tupleKey("quic", tu)] = true
		t.Logf("%v → %v: version %s, SNI %q", d.src, d.dst, a.VersionName(), sni)
	}
	for _, a := range flows {
		st := a.Stats()
		res.stats.Initials += st.Initials
		res.stats.Decrypted += st.Decrypted
		res.stats.Undecryptable += st.Undecryptable
		res.stats.Stale += st.Stale
		res.stats.Malformed += st.Malformed
		res.stats.Skipped += st.Skipped
		res.stats.KeyDerivations += st.KeyDerivations
	}
	return res
}

var quicCaptures = []string{
	"zeek/quic/chromium-115.0.5790.110-api-cirrus-com.pcap",
	"zeek/quic/quic-multiple-initial-fragmented-crypto.pcap",
	"zeek/quic/quicv2-echo-443.pcap",
	"zeek/quic/interop/quic-go_quic-go/retry.pcap",
	"zeek/quic/chromium-dpd-custom-port-4433.pcap",
	"zeek/quic/merlinc2_Zeek_example.pcapng",
	"nDPI/quic-29.pcap",
	"nDPI/quic_t51.pcap",
	"suricata-verify/quic-cyu/input.pcap",
}

func TestQUICCaptures(t *testing.T) {
	expected := readExpected(t)
	for _, name := range quicCaptures {
		t.Run(name, func(t *testing.T) {
			exp, ok := expected[name]
			if !ok {
				t.Fatalf("%s not in EXPECTED.json", name)
			}
			want := map[string]bool{}
			for _, kind := range []string{"quic", "gquic"} {
				for _, tu := range exp.Expect[kind] {
					want[tupleKey(kind, tu)] = true
				}
			}
			if len(want) == 0 {
				t.Fatalf("no QUIC expectation for %s", name)
			}
			res := walkCapture(t, readDatagrams(t, filepath.Join(pcapDir, name)))
			t.Logf("stats %+v, AddDatagram results %v", res.stats, res.errs)
			for k := range want {
				if !res.tuples[k] {
					t.Errorf("missing %s", k)
				}
			}
			for k := range res.tuples {
				if !want[k] {
					t.Errorf("unexpected %s", k)
				}
			}
			if res.stats.Malformed != 0 {
				t.Errorf("%d decrypted Initials with malformed frames", res.stats.Malformed)
			}
		})
	}
}

// captureHello returns the first client datagram and the assembled
// ClientHello of the cirrus capture, or skips.
func captureHello(tb testing.TB) (first []byte, hello []byte) {
	tb.Helper()
	path := filepath.Join(pcapDir, "zeek/quic/chromium-115.0.5790.110-api-cirrus-com.pcap")
	if _, err := os.Stat(path); err != nil {
		tb.Skipf("capture corpus not available (%v)", err)
	}
	var a QUICAssembler
	for _, d := range readDatagrams(tb, path) {
		if !IsQUICInitial(d.payload) || d.dst.Port() != 443 {
			continue
		}
		if first == nil {
			first = d.payload
		}
		_ = a.AddDatagram(d.payload)
		if h := a.ClientHello(); h != nil {
			return first, slices.Clone(h)
		}
	}
	tb.Fatal("no ClientHello in the cirrus capture")
	return nil, nil
}

// --- a test-side encryptor -------------------------------------------------------

func appendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, 0x40|byte(v>>8), byte(v))
	case v < 1<<30:
		return append(b, 0x80|byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return append(b, 0xc0|byte(v>>56), byte(v>>48), byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// testClient seals client Initials the way a QUIC stack does: AEAD over the
// payload with the header as associated data, then header protection.
type testClient struct {
	version    uint32
	dcid, scid []byte
	keyDCID    []byte // the DCID the keys derive from (differs after the server's SCID is adopted)
	token      []byte
	keys       quicKeys
	pn         uint64
}

func newTestClient(tb testing.TB, version uint32, dcid string) *testClient {
	tb.Helper()
	c := &testClient{version: version, scid: []byte{0xc1, 0x1e, 0x47}}
	c.setDCID(tb, []byte(dcid), true)
	return c
}

// setDCID changes the DCID; rekey derives the keys from it (a new
// connection or a Retry) rather than keeping the current ones (the
// server's SCID adopted after its first Initial).
func (c *testClient) setDCID(tb testing.TB, dcid []byte, rekey bool) {
	tb.Helper()
	c.dcid = dcid
	if rekey {
		c.keyDCID = dcid
		if err := deriveQUICKeys(&c.keys, c.version, dcid); err != nil {
			tb.Fatal(err)
		}
		c.pn = 0
	}
}

// header builds a long header of v1-numbered type typ, with the Length
// field for a packet number of pnLen bytes and n payload bytes.
func (c *testClient) header(typ uint8, pnLen, n int) []byte {
	_, fl := quicVersion(c.version)
	if fl == flavourV2 {
		typ = (typ + 1) & 3
	}
	b := []byte{0xc0 | typ<<4 | byte(pnLen-1)}
	b = binary.BigEndian.AppendUint32(b, c.version)
	b = append(b, byte(len(c.dcid)))
	b = append(b, c.dcid...)
	b = append(b, byte(len(c.scid)))
	b = append(b, c.scid...)
	if typ == quicTypeInitial || fl == flavourV2 && typ == 1 {
		b = appendVarint(b, uint64(len(c.token)))
		b = append(b, c.token...)
	}
	l := uint64(pnLen + n + 16)
	return append(b, 0x40|byte(l>>8), byte(l))
}

// initial seals payload (padded to the 4 bytes header protection needs)
// into a client Initial with the next packet number.
func (c *testClient) initial(payload []byte) []byte {
	for len(payload) < 4 {
		payload = append(payload, 0)
	}
	pn := c.pn
	c.pn++
	pnLen := 1 + int(pn%4) // every encoding length in turn
	if pn > 0xff {
		pnLen = 4
	}
	hdr := c.header(quicTypeInitial, pnLen, len(payload))
	pnOff := len(hdr)
	for i := pnLen - 1; i >= 0; i-- {
		hdr = append(hdr, byte(pn>>(8*i)))
	}
	nonce := c.keys.iv
	for i := range 8 {
		nonce[4+i] ^= byte(pn >> (56 - 8*i))
	}
	pkt := c.keys.aead.Seal(slices.Clone(hdr), nonce[:], payload, hdr)
	var mask [16]byte
	c.keys.hp.Encrypt(mask[:], pkt[pnOff+4:pnOff+20])
	pkt[0] ^= mask[0] & 0x0f
	for i := range pnLen {
		pkt[pnOff+i] ^= mask[1+i]
	}
	return pkt
}

// other builds a coalesced packet of another type (0-RTT, Handshake) with
// an opaque payload; the assembler must skip it.
func (c *testClient) other(typ uint8, n int) []byte {
	hdr := c.header(typ, 2, n)
	return append(hdr, bytes.Repeat([]byte{0xab}, 2+n+16)...)
}

// cryptoFrame encodes a CRYPTO frame: type 0x06, or 0x08 for gQUIC.
func cryptoFrame(typ byte, off int, data []byte) []byte {
	b := appendVarint([]byte{typ}, uint64(off))
	b = appendVarint(b, uint64(len(data)))
	return append(b, data...)
}

// datagram coalesces packets and pads to 1200 bytes, as clients must.
func datagramOf(pkts ...[]byte) []byte {
	d := slices.Concat(pkts...)
	if len(d) < 1200 {
		d = append(d, make([]byte, 1200-len(d))...)
	}
	return d
}

// piece is a CRYPTO frame's range.
type piece struct{ off, n int }

// cut splits [0, n) into pieces of lo..hi bytes.
func cut(r *rand.Rand, n, lo, hi int) []piece {
	var ps []piece
	for off := 0; off < n; {
		l := min(lo+r.IntN(hi-lo+1), n-off)
		ps = append(ps, piece{off, l})
		off += l
	}
	return ps
}

// pack puts the pieces' frames, perFrame at a time, into packets, in the
// given order, with extra frames (PING, ACK) sprinkled in.
func pack(c *testClient, hello []byte, ps []piece, perPacket int, frameType byte, extras bool) [][]byte {
	var pkts [][]byte
	for i := 0; i < len(ps); i += perPacket {
		var payload []byte
		if extras && frameType == 0x06 {
			payload = append(payload, 0x01)                         // PING
			payload = append(payload, 0x02, 0x00, 0x00, 0x00, 0x00) // ACK of packet 0
		}
		for _, p := range ps[i:min(i+perPacket, len(ps))] {
			payload = append(payload, cryptoFrame(frameType, p.off, hello[p.off:p.off+p.n])...)
			if extras {
				payload = append(payload, 0, 0, 0) // PADDING between frames
			}
		}
		pkts = append(pkts, c.initial(payload))
	}
	return pkts
}

// feed coalesces packets perDatagram at a time (adding a Handshake packet
// after them when withHandshake) and feeds the datagrams.
func feed(t *testing.T, a *QUICAssembler, c *testClient, pkts [][]byte, perDatagram int, withHandshake bool) {
	t.Helper()
	for i := 0; i < len(pkts); i += perDatagram {
		group := slices.Clone(pkts[i:min(i+perDatagram, len(pkts))])
		if withHandshake {
			group = append(group, c.other(quicTypeHandshk, 30))
		}
		if err := a.AddDatagram(datagramOf(group...)); err != nil {
			t.Fatalf("datagram %d: %v (stats %+v)", i/perDatagram, err, a.Stats())
		}
	}
}

func TestQUICAssemblerReorder(t *testing.T) {
	_, chromeHello := captureHelloOrRFC(t)
	for _, tc := range []struct {
		name          string
		version       uint32
		min, max      int
		perPacket     int
		perDatagram   int
		shuffle       bool
		dups          int // random extra pieces (duplicates and overlaps)
		reverse       bool
		extras        bool
		withHandshake bool
	}{
		{name: "one frame", version: quicV1, min: 1 << 20, max: 1 << 20, perPacket: 1, perDatagram: 1},
		{name: "in order 100", version: quicV1, min: 100, max: 100, perPacket: 4, perDatagram: 1},
		{name: "reversed", version: quicV1, min: 60, max: 90, perPacket: 3, perDatagram: 1, reverse: true},
		{name: "shuffled small", version: quicV1, min: 1, max: 40, perPacket: 6, perDatagram: 1, shuffle: true},
		{name: "shuffled dups overlaps", version: quicV1, min: 7, max: 7, perPacket: 9, perDatagram: 1, shuffle: true, dups: 60},
		{name: "coalesced + handshake", version: quicV1, min: 20, max: 200, perPacket: 2, perDatagram: 3, shuffle: true, dups: 10, withHandshake: true},
		{name: "extras", version: quicV1, min: 30, max: 80, perPacket: 5, perDatagram: 2, shuffle: true, dups: 5, extras: true},
		{name: "v2", version: quicV2, min: 10, max: 90, perPacket: 5, perDatagram: 2, shuffle: true, dups: 20, withHandshake: true},
		{name: "draft-29", version: quicDraft29, min: 10, max: 90, perPacket: 5, perDatagram: 1, shuffle: true, dups: 20},
		{name: "draft-27 (draft-23 salt)", version: 0xff00001b, min: 50, max: 300, perPacket: 2, perDatagram: 1, shuffle: true},
		{name: "draft-34 (v1 salt)", version: 0xff000022, min: 50, max: 300, perPacket: 2, perDatagram: 1, shuffle: true},
		{name: "T051", version: gquicT051, min: 10, max: 90, perPacket: 5, perDatagram: 1, shuffle: true, dups: 20, extras: true},
		{name: "T050", version: gquicT050, min: 300, max: 600, perPacket: 1, perDatagram: 1, shuffle: true},
	} {
		for seed := range uint64(5) {
			t.Run(fmt.Sprintf("%s/%d", tc.name, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 7))
				hello := chromeHello
				ps := cut(r, len(hello), min(tc.min, len(hello)), min(tc.max, len(hello)))
				for range tc.dups {
					off := r.IntN(len(hello))
					ps = append(ps, piece{off, 1 + r.IntN(min(64, len(hello)-off))})
				}
				if tc.reverse {
					slices.Reverse(ps)
				}
				if tc.shuffle {
					r.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
				}
				frameType := byte(0x06)
				if _, fl := quicVersion(tc.version); fl == flavourGTLS {
					frameType = 0x08
				}
				c := newTestClient(t, tc.version, "\x11\x22\x33\x44\x55\x66\x77\x88")
				pkts := pack(c, hello, ps, tc.perPacket, frameType, tc.extras)
				var a QUICAssembler
				// The hello must appear with the datagram that completes
				// the coverage, not before.
				covered := make([]bool, len(hello))
				step := tc.perPacket * tc.perDatagram
				for i := 0; i*step < len(ps); i++ {
					for _, p := range ps[i*step : min((i+1)*step, len(ps))] {
						for j := p.off; j < p.off+p.n; j++ {
							covered[j] = true
						}
					}
					feed(t, &a, c, pkts[i*tc.perDatagram:min((i+1)*tc.perDatagram, len(pkts))], tc.perDatagram, tc.withHandshake)
					if complete := !slices.Contains(covered, false); complete != (a.ClientHello() != nil) {
						t.Fatalf("datagram %d: coverage complete %v, hello %v", i, complete, a.ClientHello() != nil)
					}
				}
				got := a.ClientHello()
				if !bytes.Equal(got, hello) {
					t.Fatalf("hello: got %d bytes, want %d (contig %d need %d, stats %+v)", len(got), len(hello), a.contig, a.need, a.Stats())
				}
				if a.Version() != tc.version || a.TooBig() {
					t.Errorf("version %#x, TooBig %v", a.Version(), a.TooBig())
				}
				if st := a.Stats(); st.KeyDerivations != 1 || st.Undecryptable != 0 || st.Malformed != 0 {
					t.Errorf("stats %+v", st)
				}
				if tc.withHandshake && a.Stats().Skipped == 0 {
					t.Errorf("coalesced Handshake packets not skipped")
				}
			})
		}
	}
}

// captureHelloOrRFC returns a real Chrome ClientHello from the cirrus
// capture when the corpus is there, else the RFC's (smaller) one.
func captureHelloOrRFC(t *testing.T) ([]byte, []byte) {
	path := filepath.Join(pcapDir, "zeek/quic/chromium-115.0.5790.110-api-cirrus-com.pcap")
	if _, err := os.Stat(path); err != nil {
		t.Logf("capture corpus not available, using the RFC 9001 hello")
		return nil, rfcHello(t)
	}
	return captureHello(t)
}

func TestQUICAssemblerPartial(t *testing.T) {
	_, hello := captureHelloOrRFC(t)
	c := newTestClient(t, quicV1, "\x01\x02\x03\x04\x05\x06\x07\x08")
	r := rand.New(rand.NewPCG(1, 2))
	ps := cut(r, len(hello), 20, 50)
	missing := ps[len(ps)/2]
	rest := slices.Delete(slices.Clone(ps), len(ps)/2, len(ps)/2+1)
	r.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	var a QUICAssembler
	first := pack(c, hello, rest, 4, 0x06, false)
	feed(t, &a, c, first, 1, false)
	if a.ClientHello() != nil || a.TooBig() {
		t.Fatalf("hello with a piece missing: %v, TooBig %v", a.ClientHello() != nil, a.TooBig())
	}
	// A retransmission of the missing piece in a packet whose DCID is the
	// server's SCID: still the original keys.
	c.setDCID(t, []byte("server-cid"), false)
	feed(t, &a, c, pack(c, hello, []piece{missing}, 1, 0x06, false), 1, false)
	if !bytes.Equal(a.ClientHello(), hello) {
		t.Fatalf("hello not complete after the missing piece (stats %+v)", a.Stats())
	}
	if st := a.Stats(); st.KeyDerivations != 2 {
		t.Errorf("stats %+v: want 2 derivations (client DCID, server SCID)", st)
	}
	// More packets to the server's SCID: no new derivation, all open.
	feed(t, &a, c, pack(c, hello, []piece{{0, 10}, {10, 10}}, 1, 0x06, false), 1, false)
	if st := a.Stats(); st.KeyDerivations != 2 || st.Decrypted != len(first)+3 || st.Undecryptable != 0 {
		t.Errorf("stats %+v", st)
	}
}

// An injected Initial with a huge packet number must not make the real
// client's small numbers undecodable.
func TestQUICPacketNumberSkew(t *testing.T) {
	hello := rfcHello(t)
	c := newTestClient(t, quicV1, "\x01\x02\x03\x04\x05\x06\x07\x08")
	c.pn = 0x3fffff00
	forged := c.initial(cryptoFrame(0x06, 0, hello[:10]))
	c.pn = 1
	var a QUICAssembler
	feed(t, &a, c, [][]byte{forged}, 1, false)
	feed(t, &a, c, pack(c, hello, cut(rand.New(rand.NewPCG(1, 1)), len(hello), 30, 60), 1, 0x06, false), 1, false)
	if !bytes.Equal(a.ClientHello(), hello) || a.Stats().Undecryptable != 0 {
		t.Fatalf("stats %+v", a.Stats())
	}
}

func TestDecodePacketNumber(t *testing.T) {
	for _, tc := range []struct {
		largest, trunc uint64
		pnLen          int
		want           uint64
	}{
		{0xa82f30ea, 0x9b32, 2, 0xa82f9b32}, // RFC 9000 A.3
		{0, 0, 1, 0},
		{0, 5, 1, 5},
		{250, 2, 1, 258},
		{300, 250, 1, 250},
		{1 << 20, 0xffff, 2, 1<<20 - 1},
	} {
		if got := decodePacketNumber(tc.largest, tc.trunc, tc.pnLen); got != tc.want {
			t.Errorf("%#x/%#x: %#x, want %#x", tc.largest, tc.trunc, got, tc.want)
		}
	}
}

func TestQUICAssemblerTooBig(t *testing.T) {
	_, hello := captureHelloOrRFC(t)
	for _, tc := range []struct {
		name  string
		cap   int
		order []piece
	}{
		{"header first", 128, []piece{{0, 64}, {64, 64}, {128, len(hello) - 128}}},
		{"tail first", 128, []piece{{128, len(hello) - 128}, {0, 64}}},
		{"only the tail", 100, []piece{{200, 30}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, quicV1, "\x01\x02\x03\x04\x05\x06\x07\x08")
			a := QUICAssembler{MaxCryptoData: tc.cap}
			feed(t, &a, c, pack(c, hello, tc.order, 1, 0x06, false), 1, false)
			if !a.TooBig() || a.ClientHello() != nil {
				t.Fatalf("TooBig %v, hello %v", a.TooBig(), a.ClientHello() != nil)
			}
			if len(a.buf) > tc.cap {
				t.Errorf("buffer grew to %d past the cap %d", len(a.buf), tc.cap)
			}
			a.Done() // given up
			if a.TooBig() || a.ClientHello() != nil {
				t.Errorf("after Done: TooBig %v", a.TooBig())
			}
		})
	}
	// The default cap takes a hello far larger than usual.
	big := handshake(helloBody(sniExt(sniEntry(0, "big.example")), ext(0x1234, bytes.Repeat([]byte{1}, 12000))))
	c := newTestClient(t, quicV1, "\x01\x02\x03\x04\x05\x06\x07\x08")
	var a QUICAssembler
	feed(t, &a, c, pack(c, big, cut(rand.New(rand.NewPCG(3, 3)), len(big), 1000, 1100), 1, 0x06, false), 1, false)
	if !bytes.Equal(a.ClientHello(), big) {
		t.Fatalf("12 KB hello not assembled under the default cap")
	}
	// One past the default cap is too big.
	huge := handshake(helloBody(ext(0x1234, bytes.Repeat([]byte{1}, DefaultQUICCryptoCap))))
	a.Reset()
	c = newTestClient(t, quicV1, "\x01\x02\x03\x04\x05\x06\x07\x09")
	feed(t, &a, c, pack(c, huge, cut(rand.New(rand.NewPCG(3, 3)), len(huge), 1000, 1100), 1, 0x06, false), 1, false)
	if !a.TooBig() || a.ClientHello() != nil {
		t.Fatalf("oversized hello: TooBig %v", a.TooBig())
	}
}

func TestQUICAssemblerRetry(t *testing.T) {
	_, hello := captureHelloOrRFC(t)
	c := newTestClient(t, quicV1, "original")
	var a QUICAssembler
	// Half of the hello under the original DCID, then a Retry: the
	// client starts over with the Retry's SCID as DCID and its keys.
	first := pack(c, hello, []piece{{0, len(hello) / 2}}, 1, 0x06, false)
	feed(t, &a, c, first, 1, false)
	c.setDCID(t, []byte("retry-scid-0123"), true)
	c.token = bytes.Repeat([]byte{0x70}, 40)
	feed(t, &a, c, pack(c, hello, []piece{{len(hello) / 2, len(hello) - len(hello)/2}, {0, len(hello) / 2}}, 1, 0x06, false), 1, false)
	if !bytes.Equal(a.ClientHello(), hello) {
		t.Fatalf("no hello after Retry (stats %+v)", a.Stats())
	}
	a.Done()
	// A late retransmission under the abandoned DCID is stale: ignored.
	if err := a.AddDatagram(datagramOf(first[0])); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Stale != 1 || a.ClientHello() != nil {
		t.Fatalf("stale packet: stats %+v, hello %v", st, a.ClientHello() != nil)
	}
	// The client then uses the server's SCID: Retry keys still apply.
	c.setDCID(t, nil, false) // a zero-length server CID
	c.token = nil
	other := handshake(helloBody(sniExt(sniEntry(0, "after-hrr.example"))))
	// A second ClientHello after a HelloRetryRequest follows the first in
	// the stream.
	feed(t, &a, c, pack(c, other, []piece{{0, len(other)}}, 1, 0x06, false), 1, false)
	if a.ClientHello() != nil {
		t.Fatalf("data at offset 0 after Done read as a new hello")
	}
	shifted := append(slices.Clone(hello), other...)
	pkts := [][]byte{c.initial(cryptoFrame(0x06, len(hello)+10, other[10:])), c.initial(cryptoFrame(0x06, len(hello), other[:10]))}
	feed(t, &a, c, pkts, 2, false)
	if got := a.ClientHello(); !bytes.Equal(got, shifted[len(hello):]) {
		t.Fatalf("second hello: %x", got)
	}
	var h ClientHello
	if err := ParseClientHelloMessage(a.ClientHello(), &h); err != nil || string(h.SNI) != "after-hrr.example" {
		t.Fatalf("second hello: %v %q", err, h.SNI)
	}
}

func TestQUICAssemblerErrors(t *testing.T) {
	c := newTestClient(t, quicV1, "\x01\x02\x03\x04\x05\x06\x07\x08")
	hello := rfcHello(t)
	good := c.initial(cryptoFrame(0x06, 0, hello[:100]))
	corrupt := slices.Clone(good)
	corrupt[len(corrupt)-20] ^= 1
	dns := unhex(t, "12340100000100000000000003777777076578616d706c6503636f6d0000010001")
	for _, tc := range []struct {
		name string
		p    []byte
		want error
	}{
		{"empty", nil, ErrNotQUIC},
		{"dns", dns, ErrNotQUIC},
		{"short header", append([]byte{0x40}, good[1:]...), ErrNotQUIC},
		{"fixed bit clear", append([]byte{good[0] &^ 0x40}, good[1:]...), ErrNotQUIC},
		{"unknown version", append([]byte{0xc0, 0x0a, 0x1a, 0x2a, 0x3a}, good[5:]...), ErrNotQUIC},
		{"version negotiation", append([]byte{0xc0, 0, 0, 0, 0}, good[5:]...), ErrNotQUIC},
		{"v1 handshake type", append([]byte{0xe0}, good[1:]...), ErrNotQUIC},
		{"dcid too long", append([]byte{0xc0, 0, 0, 0, 1, 21}, make([]byte, 40)...), ErrNotQUIC},
		{"length past the end", good[:len(good)-1], ErrMalformed},
		{"truncated header", good[:16], ErrMalformed},
		{"corrupt", datagramOf(corrupt), ErrQUICUndecryptable},
		{"too short for a sample", datagramOf(func() []byte {
			h := c.header(quicTypeInitial, 1, 0)
			return append(h[:len(h)-2:len(h)-2], 5, 1, 2, 3, 4, 5) // Length 5: no room for a sample
		}()), ErrQUICUndecryptable},
		{"MAX_DATA frame", datagramOf(c.initial(append(cryptoFrame(0x06, 0, hello[:10]), 0x10, 0x01))), ErrMalformed},
		{"STREAM frame", datagramOf(c.initial([]byte{0x08, 0x00, 0x01, 0x61})), ErrMalformed},
		{"crypto overrun", datagramOf(c.initial([]byte{0x06, 0x00, 0x40, 0x50, 0x01})), ErrMalformed},
		{"ack overrun", datagramOf(c.initial([]byte{0x02, 0x00, 0x00, 0x3f, 0x00})), ErrMalformed},
		{"close overrun", datagramOf(c.initial([]byte{0x1c, 0x00, 0x00, 0x10, 0x61})), ErrMalformed},
		{"good then garbage", datagramOf(good, []byte{0xc0, 0, 0, 0, 1, 30}), nil},
		{"ack ecn close", datagramOf(c.initial([]byte{0x03, 0x05, 0x00, 0x01, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x1d, 0x00, 0x02, 0x68, 0x69, 0x1c, 0x0a, 0x06, 0x00})), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a QUICAssembler
			if err := a.AddDatagram(tc.p); err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// A malformed packet keeps the frames before the fault.
	var a QUICAssembler
	c = newTestClient(t, quicV1, "\x01\x02\x03\x04\x05\x06\x07\x08")
	err := a.AddDatagram(datagramOf(c.initial(append(cryptoFrame(0x06, 0, hello), 0x10, 0x01))))
	if err != ErrMalformed || !bytes.Equal(a.ClientHello(), hello) || a.Stats().Malformed != 1 {
		t.Fatalf("err %v, hello %v, stats %+v", err, a.ClientHello() != nil, a.Stats())
	}
	// A CRYPTO stream that is not a ClientHello.
	a.Reset()
	_ = a.AddDatagram(datagramOf(c.initial(cryptoFrame(0x06, 0, []byte{2, 0, 0, 4, 1, 2, 3, 4}))))
	if a.ClientHello() != nil || a.TooBig() {
		t.Fatalf("ServerHello taken for a ClientHello")
	}
}

func TestQUICCoalescedBound(t *testing.T) {
	c := newTestClient(t, quicV1, "\x01\x02\x03\x04\x05\x06\x07\x08")
	var pkts [][]byte
	for range 3 * maxQUICCoalesced {
		pkt := c.initial(nil)
		pkt[len(pkt)-1] ^= 1 // never opens
		pkts = append(pkts, pkt)
	}
	var a QUICAssembler
	if err := a.AddDatagram(datagramOf(pkts...)); err != ErrQUICUndecryptable {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Initials != maxQUICCoalesced {
		t.Fatalf("read %d packets of one datagram", st.Initials)
	}
}

func TestQUICKeyDerivationBudget(t *testing.T) {
	var a QUICAssembler
	for i := range 3 * maxQUICDerivations {
		c := newTestClient(t, quicV1, fmt.Sprintf("dcid-%04d", i))
		pkt := c.initial(cryptoFrame(0x06, 0, []byte{1, 0, 0}))
		pkt[len(pkt)-1] ^= 1 // never opens
		_ = a.AddDatagram(datagramOf(pkt))
	}
	if st := a.Stats(); st.KeyDerivations != maxQUICDerivations || st.Undecryptable != 3*maxQUICDerivations {
		t.Fatalf("stats %+v", st)
	}
}

// chloMessage builds a QUIC-crypto CHLO with the given tags (in order).
func chloMessage(tags ...string) []byte {
	b := []byte("CHLO")
	b = binary.LittleEndian.AppendUint16(b, uint16(len(tags)/2))
	b = append(b, 0, 0)
	var values []byte
	for i := 0; i < len(tags); i += 2 {
		values = append(values, tags[i+1]...)
		b = append(b, tags[i]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(values)))
	}
	return append(b, values...)
}

func TestQUICAssemblerQ050(t *testing.T) {
	msg := chloMessage("PAD\x00", strings.Repeat("-", 500), "SNI\x00", "www.example.org", "VER\x00", "Q050")
	c := newTestClient(t, gquicQ050, "\x01\x02\x03\x04\x05\x06\x07\x08")
	ps := cut(rand.New(rand.NewPCG(5, 5)), len(msg), 5, 60)
	rand.New(rand.NewPCG(5, 6)).Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	var a QUICAssembler
	feed(t, &a, c, pack(c, msg, ps, 4, 0x08, true), 1, false)
	if a.ClientHello() != nil {
		t.Fatal("ClientHello for Q050")
	}
	got := a.CHLO()
	if !bytes.Equal(got, msg) {
		t.Fatalf("CHLO %q", got)
	}
	sni, err := ParseGQUICCHLOMessage(got)
	if err != nil || string(sni) != "www.example.org" || a.VersionName() != "Q050" {
		t.Fatalf("SNI %q %v %s", sni, err, a.VersionName())
	}
}

func TestParseClientHelloMessage(t *testing.T) {
	msg := handshake(helloBody(sniExt(sniEntry(0, "example.com")), alpnExt("h3")))
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
		sni  string
	}{
		{"ok", msg, nil, "example.com"},
		{"trailing bytes", append(slices.Clone(msg), 0xff, 0xff), nil, "example.com"},
		{"empty", nil, ErrIncomplete, ""},
		{"type only", msg[:1], ErrIncomplete, ""},
		{"header only", msg[:4], ErrIncomplete, ""},
		{"one short", msg[:len(msg)-1], ErrIncomplete, ""},
		{"server hello", append([]byte{2}, msg[1:]...), ErrNotTLS, ""},
		{"record", record(msg), ErrNotTLS, ""},
		{"length too large", []byte{1, 0xff, 0xff, 0xff}, ErrMalformed, ""},
		{"bad body", handshake([]byte{3, 3, 1}), ErrMalformed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := ClientHello{SNI: []byte("stale")}
			err := ParseClientHelloMessage(tc.msg, &h)
			if err != tc.want || string(h.SNI) != tc.sni {
				t.Fatalf("got %v %q, want %v %q", err, h.SNI, tc.want, tc.sni)
			}
		})
	}
}

func TestIsQUICInitial(t *testing.T) {
	rfc1, rfc2 := unhex(t, rfc9001ClientInitial), unhex(t, rfc9369ClientInitial)
	for _, tc := range []struct {
		name string
		p    []byte
		want bool
	}{
		{"v1", rfc1, true},
		{"v2", rfc2, true},
		{"v1 header only", rfc1[:20], true},
		{"v2 type bits on v1", append([]byte{rfc2[0]}, rfc1[1:]...), false},
		{"v1 type bits on v2", append([]byte{rfc1[0]}, rfc2[1:]...), false},
		{"draft-29", append([]byte{0xc0, 0xff, 0, 0, 0x1d}, rfc1[5:]...), true},
		{"draft-22", append([]byte{0xc0, 0xff, 0, 0, 0x16}, rfc1[5:]...), false},
		{"draft-35", append([]byte{0xc0, 0xff, 0, 0, 0x23}, rfc1[5:]...), false},
		{"T051", append([]byte{0xc0, 'T', '0', '5', '1'}, rfc1[5:]...), true},
		{"Q050", append([]byte{0xc0, 'Q', '0', '5', '0'}, rfc1[5:]...), true},
		{"Q046", append([]byte{0xc3, 'Q', '0', '4', '6'}, rfc1[5:]...), false},
		{"scid too long", append([]byte{0xc0, 0, 0, 0, 1, 0, 21}, make([]byte, 30)...), false},
		{"6 bytes", rfc1[:6], false},
		{"dns", unhex(t, "12340100000100000000000003777777"), false},
	} {
		if got := IsQUICInitial(tc.p); got != tc.want {
			t.Errorf("%s: got %v", tc.name, got)
		}
	}
}

func TestQUICVersionNames(t *testing.T) {
	for v, want := range map[uint32]string{quicV1: "1", quicV2: "2", 0xff000017: "draft-23", quicDraft29: "draft-29",
		0xff000022: "draft-34", gquicT051: "T051", gquicT050: "T050", gquicQ050: "Q050", 0xff000016: "", 0: ""} {
		if got := quicVersionName(v); got != want {
			t.Errorf("%#x: %q, want %q", v, got, want)
		}
	}
	// Salts per Wireshark: drafts 27..28 take draft-23's, 29..32
	// draft-29's, 33..34 v1's.
	for v, want := range map[uint32]*[20]byte{0xff00001b: &saltDraft23, 0xff00001c: &saltDraft23, 0xff00001d: &saltDraft29,
		0xff000020: &saltDraft29, 0xff000021: &saltV1, 0xff000022: &saltV1} {
		if got, _ := quicVersion(v); got != want {
			t.Errorf("%#x: wrong salt", v)
		}
	}
}

// --- Google QUIC ----------------------------------------------------------------

func TestParseGQUICCHLO(t *testing.T) {
	chlo := chloMessage("PAD\x00", "----", "SNI\x00", "www.example.org", "VER\x00", "Q043")
	stream := func(typ byte, sid []byte, off []byte, data []byte) []byte {
		b := append([]byte{typ}, sid...)
		b = append(b, off...)
		if typ&0x20 != 0 {
			b = binary.BigEndian.AppendUint16(b, uint16(len(data)))
		}
		return append(b, data...)
	}
	hash := bytes.Repeat([]byte{0x48}, 12)
	q043 := func(frames ...[]byte) []byte {
		b := []byte{0x09}
		b = append(b, "\x01\x02\x03\x04\x05\x06\x07\x08Q043\x01"...)
		return slices.Concat(append([][]byte{b, hash}, frames...)...)
	}
	q046 := func(frames ...[]byte) []byte {
		b := []byte{0xc3}
		b = append(b, "Q046\x50\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x01"...)
		return slices.Concat(append([][]byte{b, hash}, frames...)...)
	}
	for _, tc := range []struct {
		name    string
		p       []byte
		sni     string
		version uint32
		err     error
	}{
		{"Q043", q043(stream(0xa0, []byte{1}, nil, chlo)), "www.example.org", gquicQ043, nil},
		{"Q046", q046(stream(0xa0, []byte{1}, nil, chlo)), "www.example.org", gquicQ046, nil},
		{"Q039 no length, 2-byte sid, PING first", func() []byte {
			p := q043([]byte{0x07}, stream(0x81, []byte{0, 1}, nil, chlo))
			copy(p[9:13], "Q039")
			return p
		}(), "www.example.org", gquicQ039, nil},
		{"zero offset field", q043(stream(0xa8, []byte{1}, []byte{0, 0, 0}, chlo)), "www.example.org", gquicQ043, nil},
		{"no SNI", q043(stream(0xa0, []byte{1}, nil, chloMessage("PAD\x00", "--"))), "", gquicQ043, nil},
		{"stream 3 then 1", q043(stream(0xa0, []byte{3}, nil, []byte("xx")), stream(0xa0, []byte{1}, nil, chlo)), "www.example.org", gquicQ043, nil},
		{"continuation", q043(stream(0xa8, []byte{1}, []byte{0, 4, 0}, chlo)), "", 0, ErrNotQUIC},
		{"cut SNI", q043(stream(0xa0, []byte{1}, nil, chlo[:len(chlo)-8])), "", 0, ErrIncomplete},
		{"cut table", q043(stream(0xa0, []byte{1}, nil, chlo[:20])), "", 0, ErrIncomplete},
		{"stream overrun", q043(stream(0xa0, []byte{1}, nil, chlo)[:40]), "", 0, ErrMalformed},
		{"decreasing offsets", q043(stream(0xa0, []byte{1}, nil, func() []byte {
			m := slices.Clone(chlo)
			binary.LittleEndian.PutUint32(m[12:], 1000)
			return m
		}())), "", 0, ErrMalformed},
		{"not CHLO", q043(stream(0xa0, []byte{1}, nil, []byte("SHLO\x00\x00\x00\x00"))), "", 0, ErrNotQUIC},
		{"padding first", q043([]byte{0}, stream(0xa0, []byte{1}, nil, chlo)), "", 0, ErrNotQUIC},
		{"Q038", func() []byte { p := q043(stream(0xa0, []byte{1}, nil, chlo)); copy(p[9:13], "Q038"); return p }(), "", 0, ErrNotQUIC},
		{"Q050 long header", func() []byte { p := q046(stream(0xa0, []byte{1}, nil, chlo)); copy(p[1:5], "Q050"); return p }(), "", 0, ErrNotQUIC},
		{"reset flag", func() []byte { p := q043(stream(0xa0, []byte{1}, nil, chlo)); p[0] |= 2; return p }(), "", 0, ErrNotQUIC},
		{"IETF v1", unhex(t, rfc9001ClientInitial), "", 0, ErrNotQUIC},
		{"short", []byte{0x09, 1, 2}, "", 0, ErrNotQUIC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sni, v, err := ParseGQUICCHLO(tc.p)
			if err != tc.err || string(sni) != tc.sni || v != tc.version {
				t.Fatalf("got %q %#x %v, want %q %#x %v", sni, v, err, tc.sni, tc.version, tc.err)
			}
			if tc.sni == "" && sni != nil {
				t.Fatalf("non-nil empty SNI")
			}
		})
	}
}

// --- fuzzing ----------------------------------------------------------------

// fuzzClients seal the fuzzer's plaintexts into Initials, one per flavour;
// keys are derived once.
var fuzzClients = func() []*testClient {
	var cs []*testClient
	for _, v := range []uint32{quicV1, quicV2, gquicT051, gquicQ050} {
		c := &testClient{version: v, dcid: []byte("fuzz-dcid"), keyDCID: []byte("fuzz-dcid"), scid: []byte{1}}
		if err := deriveQUICKeys(&c.keys, v, c.dcid); err != nil {
			panic(err)
		}
		cs = append(cs, c)
	}
	return cs
}()

// fuzzSplit cuts b into up to n parts, the lengths taken from b itself.
func fuzzSplit(b []byte, n int) [][]byte {
	var parts [][]byte
	for i := 0; i < n-1 && len(b) >= 2; i++ {
		l := min(int(binary.BigEndian.Uint16(b)), len(b)-2)
		parts = append(parts, b[2:2+l])
		b = b[2+l:]
	}
	return append(parts, b)
}

// FuzzQUICAssembler feeds 1–3 datagrams derived from the input to a fresh
// assembler. The first byte chooses: bit 0 raw datagrams (header parsing,
// coalescing, decryption failures) or plaintext payloads sealed into real
// Initials (frames, reassembly, caps), bits 1–2 the version of the sealed
// packets, bits 3–4 the number of parts, bit 5 one packet per datagram or
// all coalesced, bit 6 a small cap.
func FuzzQUICAssembler(f *testing.F) {
	rfc1, rfc2 := unhex(f, rfc9001ClientInitial), unhex(f, rfc9369ClientInitial)
	f.Add(append([]byte{0x00}, rfc1...))
	f.Add(append([]byte{0x00}, rfc2...))
	frame := unhex(f, rfcCryptoFrame)
	f.Add(append([]byte{0x01}, frame...))
	f.Add(append([]byte{0x03}, frame...))
	hello := frame[4:]
	two := slices.Concat([]byte{0x11, 0, 60}, cryptoFrame(0x06, 100, hello[100:]), []byte{0, 0, 0x01, 0x02, 0, 0, 0, 0}, cryptoFrame(0x06, 0, hello[:100]))
	f.Add(two)
	f.Add(slices.Concat([]byte{0x35, 0, 60}, cryptoFrame(0x08, 100, hello[100:]), cryptoFrame(0x08, 0, hello[:100]), []byte{7}))
	f.Add(slices.Concat([]byte{0x57}, cryptoFrame(0x08, 0, chloMessage("SNI\x00", "a.b", "PAD\x00", "----"))))
	f.Add(slices.Concat([]byte{0x41}, cryptoFrame(0x06, 0, hello[:4]), cryptoFrame(0x06, 70, hello[70:90])))
	f.Add([]byte{0x01, 0x03, 0x00, 0x00, 0x01, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x1d, 0x00, 0x00})
	if path := filepath.Join(pcapDir, "zeek/quic/quic-multiple-initial-fragmented-crypto.pcap"); fileExists(path) {
		for _, name := range quicCaptures {
			n := 0
			for _, d := range readDatagrams(f, filepath.Join(pcapDir, name)) {
				if IsQUICInitial(d.payload) && n < 3 {
					f.Add(append([]byte{0x00}, d.payload...))
					n++
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, rest := data[0], data[1:]
		parts := fuzzSplit(rest, 1+int(mode>>3&3)%3)
		a := QUICAssembler{}
		if mode&0x40 != 0 {
			a.MaxCryptoData = 64
		}
		var dgs [][]byte
		if mode&1 == 0 {
			dgs = parts
		} else {
			c := *fuzzClients[mode>>1&3]
			c.pn = 0
			var pkts [][]byte
			for _, p := range parts {
				p = p[:min(len(p), 16000)] // the test sealer writes a 2-byte Length
				pkts = append(pkts, c.initial(slices.Clone(p)))
			}
			if mode&0x20 != 0 {
				dgs = pkts
			} else {
				dgs = [][]byte{slices.Concat(pkts...)}
			}
		}
		for _, d := range dgs {
			orig := slices.Clone(d)
			err := a.AddDatagram(d)
			switch err {
			case nil, ErrNotQUIC, ErrMalformed, ErrQUICUndecryptable:
			default:
				t.Fatalf("unexpected error %v", err)
			}
			if !bytes.Equal(d, orig) {
				t.Fatal("input modified")
			}
			if mode&1 != 0 && mode&0x20 != 0 && err == ErrQUICUndecryptable {
				t.Fatal("sealed packet did not open")
			}
			if hello := a.ClientHello(); hello != nil {
				if hello[0] != 1 || len(hello) < 4 || len(hello) != 4+(int(hello[1])<<16|int(hello[2])<<8|int(hello[3])) {
					t.Fatalf("bad hello %x", hello[:min(len(hello), 8)])
				}
				var h ClientHello
				_ = ParseClientHelloMessage(hello, &h)
				if len(hello) > a.capacity() {
					t.Fatal("hello past the cap")
				}
			}
			if chlo := a.CHLO(); chlo != nil {
				if string(chlo[:4]) != "CHLO" {
					t.Fatalf("bad CHLO %x", chlo[:8])
				}
				_, _ = ParseGQUICCHLOMessage(chlo)
			}
			if a.ClientHello() != nil && a.TooBig() {
				t.Fatal("complete and too big")
			}
			if len(a.buf) > a.capacity() {
				t.Fatalf("buffer %d past the cap %d", len(a.buf), a.capacity())
			}
		}
	})
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// FuzzParseClientHelloMessage checks that a bare handshake message parses
// exactly as the same message in a TLS record.
func FuzzParseClientHelloMessage(f *testing.F) {
	f.Add(rfcHello(f))
	f.Add(handshake(helloBody(sniExt(sniEntry(0, "example.com"), sniEntry(0, "b")), alpnExt("h3", "h3-29"), svExt(0x0a0a, 0x0304))))
	f.Add(handshake(bodyPrefix()))
	f.Add([]byte{1, 0, 0})
	f.Add(goHello(f)[recordHeaderLen:])
	if fileExists(filepath.Join(pcapDir, "zeek/quic/chromium-115.0.5790.110-api-cirrus-com.pcap")) {
		_, hello := captureHello(f)
		f.Add(hello)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var h ClientHello
		err := ParseClientHelloMessage(msg, &h)
		switch err {
		case nil:
		case ErrIncomplete, ErrNotTLS, ErrMalformed:
			if h.SNI != nil || h.Extensions != nil || h.CipherSuites != nil || h.Version != 0 {
				t.Fatalf("h not reset after %v", err)
			}
		default:
			t.Fatalf("unexpected error %v", err)
		}
		if len(msg) > maxRecordLen {
			return
		}
		var h2 ClientHello
		_, err2 := ParseClientHello(record(msg), nil, &h2)
		s1, s2 := summarize(&h), summarize(&h2)
		s2.RecordVersion = 0
		if err != err2 || s1 != s2 {
			t.Fatalf("message %v %+v, in a record %v %+v", err, s1, err2, s2)
		}
	})
}

func FuzzParseGQUICCHLO(f *testing.F) {
	chlo := chloMessage("PAD\x00", "----", "SNI\x00", "www.example.org", "VER\x00", "Q043")
	f.Add(slices.Concat([]byte{0x09}, []byte("\x01\x02\x03\x04\x05\x06\x07\x08Q043\x01"), make([]byte, 12), []byte{0xa0, 1}, binary.BigEndian.AppendUint16(nil, uint16(len(chlo))), chlo))
	f.Add(slices.Concat([]byte{0xc3}, []byte("Q046\x50\x01\x02\x03\x04\x05\x06\x07\x08\x00\x00\x00\x01"), make([]byte, 12), []byte{0x07, 0x81, 0, 1}, chlo))
	f.Add(unhex(f, rfc9001ClientInitial))
	if path := filepath.Join(pcapDir, "suricata-verify/quic-cyu/input.pcap"); fileExists(path) {
		for i, d := range readDatagrams(f, path) {
			if i < 4 {
				f.Add(d.payload)
			}
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		sni, v, err := ParseGQUICCHLO(p)
		switch err {
		case nil:
			if v == 0 {
				t.Fatal("no version")
			}
		case ErrNotQUIC, ErrMalformed, ErrIncomplete:
			if sni != nil || v != 0 {
				t.Fatalf("result with error %v", err)
			}
			return
		default:
			t.Fatalf("unexpected error %v", err)
		}
		// An empty SNI value is a present tag: an empty, non-nil slice.
		if len(sni) > 0 && !aliases(p, sni) {
			t.Fatal("SNI does not alias the input")
		}
		if cap(sni) != len(sni) {
			t.Fatal("SNI not capped")
		}
	})
}

// --- benchmarks ---------------------------------------------------------------

func BenchmarkIsQUICInitial(b *testing.B) {
	dns := unhex(b, "12340100000100000000000003777777076578616d706c6503636f6d0000010001")
	rfc := unhex(b, rfc9001ClientInitial)
	b.Run("not-quic", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if IsQUICInitial(dns) {
				n++
			}
		}
		_ = n
	})
	b.Run("quic", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		for b.Loop() {
			if IsQUICInitial(rfc) {
				n++
			}
		}
		_ = n
	})
}

func BenchmarkQUICAssemblerNotQUIC(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	inputs := [][]byte{unhex(b, "12340100000100000000000003777777076578616d706c6503636f6d0000010001"), make([]byte, 1200)}
	for i := range inputs[1] {
		inputs[1][i] = byte(r.Uint32())
	}
	inputs[1][0] = 0x45 // not a long header
	var a QUICAssembler
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range inputs {
			if a.AddDatagram(p) != ErrNotQUIC {
				b.Fatal("taken for QUIC")
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = a.AddDatagram(inputs[1]) }); n != 0 {
		b.Fatalf("%v allocs per rejection", n)
	}
}

// BenchmarkQUICAssemblerInitial decrypts a 1200-byte client Initial with
// its keys cached: the per-packet cost of a known connection.
func BenchmarkQUICAssemblerInitial(b *testing.B) {
	p := unhex(b, rfc9001ClientInitial)
	var a QUICAssembler
	if err := a.AddDatagram(p); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if err := a.AddDatagram(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQUICAssemblerNewConnection includes the key derivation of a
// connection's first Initial.
func BenchmarkQUICAssemblerNewConnection(b *testing.B) {
	p := unhex(b, rfc9001ClientInitial)
	var a QUICAssembler
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		a.Reset()
		if err := a.AddDatagram(p); err != nil || a.ClientHello() == nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseClientHelloMessage(b *testing.B) {
	msg := goHello(b)[recordHeaderLen:]
	var h ClientHello
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseClientHelloMessage(msg, &h); err != nil {
			b.Fatal(err)
		}
	}
}

// floodInitial returns a v1 client Initial of 1200 bytes with an 8-byte
// DCID and random protected bytes that no key opens, as a flood sends.
func floodInitial(r *rand.Rand) []byte {
	q := make([]byte, 1200)
	q[0] = 0xc3
	binary.BigEndian.PutUint32(q[1:], 1)
	q[5] = 8
	binary.BigEndian.PutUint16(q[16:], 0x4000|uint16(len(q)-18))
	for i := 18; i < len(q); i++ {
		q[i] = byte(r.Uint32())
	}
	return q
}

// BenchmarkQUICAssemblerUndecryptable: an Initial with a DCID never seen
// and random contents (a flood), read by an assembler reset for each:
// one key derivation per datagram.
func BenchmarkQUICAssemblerUndecryptable(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	q := floodInitial(r)
	var a QUICAssembler
	b.SetBytes(int64(len(q)))
	b.ReportAllocs()
	for b.Loop() {
		binary.BigEndian.PutUint64(q[6:], r.Uint64())
		binary.BigEndian.PutUint64(q[18:], r.Uint64())
		binary.BigEndian.PutUint64(q[26:], r.Uint64())
		a.Reset()
		if a.AddDatagram(q) != ErrQUICUndecryptable {
			b.Fatal("opened")
		}
	}
}

// TestQUICKeyCache: assemblers sharing a cache derive a connection's
// keys once; keys that opened nothing are not kept; the least recently
// used entry goes first.
func TestQUICKeyCache(t *testing.T) {
	p := unhex(t, rfc9001ClientInitial)
	c := NewQUICKeyCache(2)
	a := QUICAssembler{Keys: c}
	if err := a.AddDatagram(p); err != nil || a.ClientHello() == nil {
		t.Fatalf("first: %v", err)
	}
	if c.Len() != 1 || c.Misses != 1 || a.Stats().KeyDerivations != 1 {
		t.Fatalf("after the first: %d cached, %d misses, %+v", c.Len(), c.Misses, a.Stats())
	}
	// Another assembler (a flow without state, reset per datagram):
	// no derivation, and Reset keeps the cache.
	b := QUICAssembler{Keys: c}
	b.Reset()
	if n := testing.AllocsPerRun(10, func() {
		b.Reset()
		if err := b.AddDatagram(p); err != nil || b.ClientHello() == nil {
			t.Fatalf("cached: %v", err)
		}
	}); n != 0 {
		t.Errorf("%v allocations with the keys cached", n)
	}
	if b.Stats().KeyDerivations != 0 || c.Hits == 0 {
		t.Fatalf("derived again: %+v, %d hits", b.Stats(), c.Hits)
	}
	// Initials that open with no key are not cached.
	r := rand.New(rand.NewPCG(5, 6))
	for range 10 {
		b.Reset()
		q := floodInitial(r)
		binary.BigEndian.PutUint64(q[6:], r.Uint64())
		if b.AddDatagram(q) != ErrQUICUndecryptable {
			t.Fatal("random Initial opened")
		}
	}
	if c.Len() != 1 {
		t.Fatalf("%d cached after undecryptable Initials", c.Len())
	}
	// LRU: with room for 2, the least recently used goes.
	var m [3]*quicMaterial
	for i := range m {
		m[i] = &quicMaterial{}
	}
	rfc := unhex(t, rfcDCID)
	c.put(quicV1, []byte{0}, m[0]) // {0, rfc}
	c.get(quicV1, rfc)             // {rfc, 0}
	c.put(quicV1, []byte{1}, m[1]) // 0 out: {1, rfc}
	if c.get(quicV1, []byte{0}) != nil || c.get(quicV1, rfc) == nil || c.get(quicV1, []byte{1}) != m[1] {
		t.Fatal("LRU: wrong entry out") // now {1, rfc}
	}
	c.put(quicV1, []byte{2}, m[2]) // rfc out: {2, 1}
	if c.Len() != 2 || c.get(quicV1, rfc) != nil || c.get(quicV1, []byte{2}) != m[2] || c.get(quicV1, []byte{1}) != m[1] {
		t.Fatalf("LRU: wrong entry out (%d entries)", c.Len())
	}
	if c.get(quicV2, []byte{1}) != nil {
		t.Fatal("versions mixed")
	}
}

// TestQUICDerivationAllocs: deriving keys costs the header protection
// cipher and the material only; the AEAD comes when a packet gets past
// the header check.
func TestQUICDerivationAllocs(t *testing.T) {
	dcid := unhex(t, rfcDCID)
	if n := testing.AllocsPerRun(100, func() {
		if _, err := deriveQUICMaterial(quicV1, dcid); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("%v allocations per derivation, want at most 2", n)
	}
}
