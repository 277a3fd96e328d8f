package geo

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// fixtureEpoch is the build_epoch of every fixture database.
var fixtureEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// network is one row of a fixture database.
type network struct {
	cidr   string
	record mmdbtype.Map
}

// writeMMDB builds an mmdb file with mmdbwriter in dir and returns its path.
// Reserved networks are allowed so that a test can prove that Lookup never
// reaches the database for private addresses.
func writeMMDB(t testing.TB, dir, name string, opts mmdbwriter.Options, nets []network) string {
	t.Helper()
	opts.IncludeReservedNetworks = true
	if opts.BuildEpoch == 0 {
		opts.BuildEpoch = fixtureEpoch.Unix()
	}
	if opts.RecordSize == 0 {
		opts.RecordSize = 24
	}
	tree, err := mmdbwriter.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(ipnet, n.record); err != nil {
			t.Fatalf("insert %s: %v", n.cidr, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// geoip2Country is a GeoLite2-Country (and DB-IP country lite) record.
func geoip2Country(iso, name string, geonameID uint32) mmdbtype.Map {
	c := mmdbtype.Map{
		"geoname_id": mmdbtype.Uint32(geonameID),
		"iso_code":   mmdbtype.String(iso),
		"names":      mmdbtype.Map{"en": mmdbtype.String(name), "ru": mmdbtype.String(name + " (ru)")},
	}
	return mmdbtype.Map{
		"continent":          mmdbtype.Map{"code": mmdbtype.String("EU"), "geoname_id": mmdbtype.Uint32(6255148), "names": mmdbtype.Map{"en": mmdbtype.String("Europe")}},
		"country":            c,
		"registered_country": c,
	}
}

func asnRecord(asn uint32, org string) mmdbtype.Map {
	return mmdbtype.Map{
		"autonomous_system_number":       mmdbtype.Uint32(asn),
		"autonomous_system_organization": mmdbtype.String(org),
	}
}

func countryCode(cc string) mmdbtype.Map {
	return mmdbtype.Map{"country_code": mmdbtype.String(cc)}
}

// The fixture networks: Yandex and Google, IPv4 and IPv6, plus a private
// network that Lookup must never report.
const (
	yandex4  = "77.88.0.0/18"
	yandex6  = "2a02:6b8::/32"
	google4  = "8.8.8.0/24"
	google6  = "2001:4860::/32"
	private4 = "10.0.0.0/8"
	regOnly  = "5.8.0.0/16" // GeoLite2 fixture: registered_country only
)

func geoLite2CountryNets() []network {
	return []network{
		{yandex4, geoip2Country("RU", "Russia", 2017370)},
		{yandex6, geoip2Country("RU", "Russia", 2017370)},
		{google4, geoip2Country("US", "United States", 6252001)},
		{google6, geoip2Country("US", "United States", 6252001)},
		{private4, geoip2Country("DE", "Germany", 2921044)},
		{regOnly, mmdbtype.Map{
			"continent":          mmdbtype.Map{"code": mmdbtype.String("EU")},
			"registered_country": mmdbtype.Map{"iso_code": mmdbtype.String("RU"), "geoname_id": mmdbtype.Uint32(2017370)},
		}},
	}
}

func asnNets() []network {
	return []network{
		{yandex4, asnRecord(13238, "YANDEX LLC")},
		{yandex6, asnRecord(13238, "YANDEX LLC")},
		{google4, asnRecord(15169, "GOOGLE")},
		{google6, asnRecord(15169, "GOOGLE")},
		{private4, asnRecord(64512, "PRIVATE")},
	}
}

func countryCodeNets() []network {
	return []network{
		{yandex4, countryCode("RU")},
		{yandex6, countryCode("RU")},
		{google4, countryCode("US")},
		{google6, countryCode("US")},
		{private4, countryCode("DE")},
		{"1.0.0.0/24", countryCode("ZZ")},     // unknown
		{"1.0.1.0/24", countryCode("au")},     // lower case
		{"1.0.2.0/24", countryCode("RUS")},    // not alpha-2
		{"1.0.3.0/24", countryCode("")},       // empty
		{"2c0f:f000::/32", countryCode("ZA")}, // IPv6 only
	}
}

// fixtures writes every fixture database into a fresh directory.
type fixtureSet struct {
	geoLite2Country, geoLite2ASN, dbipCountry, dbipASN string
	ipldbCountry, ipldbCountry4, ipldbASN              string
}

func fixtures(t testing.TB) fixtureSet {
	t.Helper()
	dir := t.TempDir()
	return fixtureSet{
		geoLite2Country: writeMMDB(t, dir, "GeoLite2-Country.mmdb", mmdbwriter.Options{
			DatabaseType: "GeoLite2-Country", Languages: []string{"en", "ru"},
			Description: map[string]string{"en": "GeoLite2 Country database (test)"},
		}, geoLite2CountryNets()),
		geoLite2ASN: writeMMDB(t, dir, "GeoLite2-ASN.mmdb", mmdbwriter.Options{
			DatabaseType: "GeoLite2-ASN", Description: map[string]string{"en": "GeoLite2 ASN database (test)"},
		}, asnNets()),
		dbipCountry: writeMMDB(t, dir, "dbip-country-lite.mmdb", mmdbwriter.Options{
			DatabaseType: "DBIP-Country-Lite", Languages: []string{"en"},
			Description: map[string]string{"en": "dbip-country-lite (test)"},
		}, geoLite2CountryNets()[:5]),
		dbipASN: writeMMDB(t, dir, "dbip-asn-lite.mmdb", mmdbwriter.Options{
			DatabaseType: "DBIP-ASN-Lite (compat=GeoLite2-ASN)",
		}, asnNets()),
		// ip-location-db files have no ::ffff:0:0/96 alias, like the
		// real ones.
		ipldbCountry: writeMMDB(t, dir, "geo-whois-asn-country.mmdb", mmdbwriter.Options{
			DatabaseType: "country ipvAll", DisableIPv4Aliasing: true,
		}, countryCodeNets()),
		ipldbCountry4: writeMMDB(t, dir, "geo-whois-asn-country-ipv4.mmdb", mmdbwriter.Options{
			DatabaseType: "country ipv4", IPVersion: 4,
		}, countryCodeNets()[:9]),
		ipldbASN: writeMMDB(t, dir, "asn.mmdb", mmdbwriter.Options{
			DatabaseType: "asn ipvAll", DisableIPv4Aliasing: true,
		}, asnNets()),
	}
}

func mustOpen(t testing.TB, cfg Config) *DB {
	t.Helper()
	d, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	return d
}

func addr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

func res(cc string, asn uint32) Result {
	var r Result
	copy(r.Country[:], cc)
	r.ASN = asn
	return r
}

// commonCases hold for every fixture pair: Yandex is RU/13238 and Google
// US/15169 (ASN only where an ASN database is loaded), everything else is
// unknown.
var commonCases = []struct {
	addr string
	want Result
}{
	{"77.88.8.8", res("RU", 13238)},
	{"77.88.63.255", res("RU", 13238)},
	{"::ffff:77.88.8.8", res("RU", 13238)},  // IPv4-mapped: looked up as IPv4
	{"64:ff9b::4d58:808", res("RU", 13238)}, // NAT64 of 77.88.8.8
	{"8.8.8.8", res("US", 15169)},
	{"2a02:6b8::feed:0ff", res("RU", 13238)},
	{"2a02:6b8:ffff::1", res("RU", 13238)},
	{"2001:4860:4860::8888", res("US", 15169)},
	{"77.88.64.1", Result{}},  // just outside 77.88.0.0/18
	{"8.8.4.4", Result{}},     // miss
	{"2a03:6b8::1", Result{}}, // miss
	// In every fixture database, never returned:
	{"10.1.2.3", Result{}},
	{"::ffff:10.1.2.3", Result{}},
	// Other non-global addresses:
	{"127.0.0.1", Result{}},
	{"192.168.1.1", Result{}},
	{"172.16.0.1", Result{}},
	{"100.64.0.1", Result{}},
	{"169.254.1.1", Result{}},
	{"192.0.2.1", Result{}},
	{"198.51.100.1", Result{}},
	{"203.0.113.1", Result{}},
	{"224.0.0.251", Result{}},
	{"255.255.255.255", Result{}},
	{"0.0.0.0", Result{}},
	{"::", Result{}},
	{"::1", Result{}},
	{"fe80::1", Result{}},
	{"fe80::1%eth0", Result{}},
	{"fd00::1", Result{}},
	{"ff02::1", Result{}},
	{"2001:db8::1", Result{}},
	{"64:ff9b::a01:203", Result{}}, // NAT64 of 10.1.2.3
	{"", Result{}},                 // the zero netip.Addr
}

func TestLookupFixtures(t *testing.T) {
	fx := fixtures(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"GeoLite2", Config{CountryPath: fx.geoLite2Country, ASNPath: fx.geoLite2ASN}},
		{"DB-IP", Config{CountryPath: fx.dbipCountry, ASNPath: fx.dbipASN}},
		{"ip-location-db", Config{CountryPath: fx.ipldbCountry, ASNPath: fx.ipldbASN}},
		{"mixed", Config{CountryPath: fx.ipldbCountry, ASNPath: fx.geoLite2ASN}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := mustOpen(t, tc.cfg)
			for _, c := range commonCases {
				if got := d.Lookup(addr(c.addr)); got != c.want {
					t.Errorf("Lookup(%s) = %+v, want %+v", c.addr, got, c.want)
				}
				want := c.want
				switch want.ASN {
				case 13238:
					want.Org = "YANDEX LLC"
				case 15169:
					want.Org = "GOOGLE"
				}
				if got := d.LookupWithOrg(addr(c.addr)); got != want {
					t.Errorf("LookupWithOrg(%s) = %+v, want %+v", c.addr, got, want)
				}
				if got := d.LookupOrg(addr(c.addr)); got != want.Org {
					t.Errorf("LookupOrg(%s) = %q, want %q", c.addr, got, want.Org)
				}
			}
			if n := d.LookupErrors(); n != 0 {
				t.Errorf("LookupErrors = %d", n)
			}
		})
	}
}

func TestLookupCountryOnly(t *testing.T) {
	fx := fixtures(t)
	for _, tc := range []struct {
		name, path string
		cases      map[string]string
	}{
		{"GeoLite2", fx.geoLite2Country, map[string]string{
			"77.88.8.8": "RU", "2001:4860::1": "US",
			"5.8.1.1": "RU", // registered_country when there is no country
		}},
		{"ip-location-db", fx.ipldbCountry, map[string]string{
			"77.88.8.8": "RU", "2a02:6b8::1": "RU", "2c0f:f000::1": "ZA",
			"1.0.0.1": "", // ZZ
			"1.0.1.1": "AU",
			"1.0.2.1": "", // RUS
			"1.0.3.1": "", // empty
		}},
		{"ip-location-db IPv4 only", fx.ipldbCountry4, map[string]string{
			"77.88.8.8": "RU", "::ffff:77.88.8.8": "RU", "1.0.1.1": "AU",
			"2a02:6b8::1": "", // IPv6 in an IPv4-only database: unknown, no error
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := mustOpen(t, Config{CountryPath: tc.path})
			for a, want := range tc.cases {
				got := d.Lookup(addr(a))
				if got.CountryCode() != want || got.ASN != 0 || got.Org != "" {
					t.Errorf("Lookup(%s) = %+v, want country %q and no ASN", a, got, want)
				}
			}
			if d.LookupOrg(addr("77.88.8.8")) != "" {
				t.Error("LookupOrg without an ASN database is not empty")
			}
			if n := d.LookupErrors(); n != 0 {
				t.Errorf("LookupErrors = %d", n)
			}
		})
	}
}

// TestAgainstGeoIP2 checks this package's decoder against geoip2-golang on
// the GeoIP2-typed fixtures.
func TestAgainstGeoIP2(t *testing.T) {
	fx := fixtures(t)
	for _, p := range [][2]string{{fx.geoLite2Country, fx.geoLite2ASN}, {fx.dbipCountry, fx.dbipASN}} {
		d := mustOpen(t, Config{CountryPath: p[0], ASNPath: p[1]})
		gc, err := geoip2.Open(p[0])
		if err != nil {
			t.Fatal(err)
		}
		ga, err := geoip2.Open(p[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range []string{"77.88.8.8", "8.8.8.8", "2a02:6b8::1", "2001:4860::1", "1.1.1.1", "2c0f::1"} {
			c, err := gc.Country(addr(a))
			if err != nil {
				t.Fatal(err)
			}
			as, err := ga.ASN(addr(a))
			if err != nil {
				t.Fatal(err)
			}
			want := Result{ASN: uint32(as.AutonomousSystemNumber), Org: as.AutonomousSystemOrganization}
			copy(want.Country[:], c.Country.ISOCode)
			if got := d.LookupWithOrg(addr(a)); got != want {
				t.Errorf("%s: %s: got %+v, geoip2 says %+v", filepath.Base(p[0]), a, got, want)
			}
		}
		_ = gc.Close()
		_ = ga.Close()
	}
}

func TestOpenRoles(t *testing.T) {
	fx := fixtures(t)
	dir := t.TempDir()
	custom := writeMMDB(t, dir, "custom.mmdb", mmdbwriter.Options{DatabaseType: "acme-geo"}, countryCodeNets())
	customASN := writeMMDB(t, dir, "custom-asn.mmdb", mmdbwriter.Options{DatabaseType: "acme-asn"}, asnNets())
	city := writeMMDB(t, dir, "city.mmdb", mmdbwriter.Options{DatabaseType: "acme-city"}, []network{
		{yandex4, mmdbtype.Map{"city": mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String("Moscow")}}}},
	})
	badShape := writeMMDB(t, dir, "bad-shape.mmdb", mmdbwriter.Options{DatabaseType: "acme"}, []network{
		{yandex4, mmdbtype.Map{"country_code": mmdbtype.Uint32(7)}},
	})
	bigASN := writeMMDB(t, dir, "big-asn.mmdb", mmdbwriter.Options{DatabaseType: "acme"}, []network{
		{yandex4, mmdbtype.Map{"autonomous_system_number": mmdbtype.Uint64(1 << 33)}},
	})

	// Unknown types are accepted by their fields.
	d := mustOpen(t, Config{CountryPath: custom, ASNPath: customASN})
	if got := d.Lookup(addr("77.88.8.8")); got != res("RU", 13238) {
		t.Errorf("custom types: Lookup = %+v", got)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{CountryPath: fx.geoLite2ASN}, `GeoLite2-ASN.mmdb: database type "GeoLite2-ASN" has no country data`},
		{Config{ASNPath: fx.geoLite2Country}, `GeoLite2-Country.mmdb: database type "GeoLite2-Country" has no ASN data`},
		{Config{CountryPath: city}, `city.mmdb: database type "acme-city" has no country data`},
		{Config{CountryPath: badShape}, "bad-shape.mmdb: record for 77.88.0.0/18: country_code:"},
		{Config{CountryPath: custom, ASNPath: bigASN}, "big-asn.mmdb: record for 77.88.0.0/18: autonomous_system_number: does not fit 32 bits"},
		{Config{CountryPath: filepath.Join(dir, "missing.mmdb")}, "missing.mmdb: no such file"},
		{Config{CountryPath: dir}, dir + ": not a regular file"},
	} {
		_, err := Open(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want error containing %q", tc.cfg, err, tc.want)
		}
	}
}

// TestOpenCorrupt feeds Open truncated and damaged files: each must give an
// error, never a panic or a DB that panics later.
func TestOpenCorrupt(t *testing.T) {
	fx := fixtures(t)
	good, err := os.ReadFile(fx.geoLite2Country)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	try := func(name string, data []byte) error {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := Open(Config{CountryPath: p})
		if err == nil {
			// Not detected: then lookups must still be safe.
			for _, c := range commonCases {
				d.Lookup(addr(c.addr))
				d.LookupWithOrg(addr(c.addr))
			}
			return nil
		}
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
		return err
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", bytes.Repeat([]byte("not an mmdb "), 100)},
		{"half", good[:len(good)/2]},
		{"no-metadata", good[:bytes.LastIndex(good, metadataMarker)]},
		{"marker-only", metadataMarker},
	} {
		if try(tc.name, tc.data) == nil {
			t.Errorf("%s: Open succeeded", tc.name)
		}
	}
	// Every truncation and every single damaged byte of the file: errors are
	// expected for most, a panic for none.
	var failed int
	for n := 0; n < len(good); n += 7 {
		if try("truncated", good[:n]) != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Error("no truncated file was rejected")
	}
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0xa5
		try("flipped", bad)
	}
}

func TestCountryCode(t *testing.T) {
	for _, tc := range []struct {
		in   Result
		want string
	}{
		{Result{}, ""},
		{res("RU", 0), "RU"},
		{res("AA", 0), "AA"},
		{res("ZZ", 0), "ZZ"},
		{Result{Country: [2]byte{'r', 'u'}}, "ru"},
	} {
		if got := tc.in.CountryCode(); got != tc.want {
			t.Errorf("%v.CountryCode() = %q, want %q", tc.in.Country, got, tc.want)
		}
	}
	r := res("KZ", 0)
	if n := testing.AllocsPerRun(100, func() { _ = r.CountryCode() }); n != 0 {
		t.Errorf("CountryCode allocates %v times", n)
	}
}

// Addresses in the embedded database whose country is not in doubt:
// networks of national operators or registries, registered and used in one
// country (no anycast service whose country could be argued).
var embeddedCases = map[string]string{
	"77.88.8.8":            "RU", // Yandex DNS, AS13238, RIPE NCC registration in Moscow
	"87.250.250.242":       "RU", // ya.ru
	"2a02:6b8::feed:0ff":   "RU", // Yandex IPv6 DNS
	"213.180.193.3":        "RU", // Yandex name server
	"8.8.8.8":              "US", // Google Public DNS, ARIN registration
	"2001:4860:4860::8888": "US", // Google Public DNS IPv6
	"130.59.31.248":        "CH", // SWITCH, the Swiss research network
	"193.0.6.139":          "NL", // www.ripe.net, RIPE NCC in Amsterdam
	"::ffff:77.88.8.8":     "RU", // IPv4-mapped: looked up as IPv4
	"10.0.0.1":             "",
	"fd00::1":              "",
}

func TestEmbedded(t *testing.T) {
	d := mustOpen(t, Config{})
	for a, want := range embeddedCases {
		got := d.Lookup(addr(a))
		if got.CountryCode() != want || got.ASN != 0 {
			t.Errorf("embedded: Lookup(%s) = %+v, want %q", a, got, want)
		}
	}
	info := d.Info()
	if len(info) != 1 {
		t.Fatalf("Info = %+v, want one database", info)
	}
	i := info[0]
	if !strings.HasPrefix(i.Path, "embedded:@ip-location-db/geo-whois-asn-country-mmdb@2.") ||
		!strings.HasSuffix(i.Path, "/geo-whois-asn-country.mmdb") ||
		i.Role != "country" || i.Type != "country ipvAll" || i.Attribution != Attribution {
		t.Errorf("Info = %+v", i)
	}
	// The build date is in the version (2.3.YYYYMMDDHH): they must agree.
	v := i.Path[strings.LastIndex(i.Path, "@")+1 : strings.LastIndex(i.Path, "/")] // 2.3.2026061719
	v = v[strings.LastIndex(v, ".")+1:]
	if stamp := i.BuildTime.Format("20060102"); !strings.HasPrefix(v, stamp) {
		t.Errorf("BuildTime %v does not match version %s", i.BuildTime, i.Path)
	}
	if s := d.Stale(i.BuildTime.Add(59*24*time.Hour), 60*24*time.Hour); len(s) != 0 {
		t.Errorf("Stale after 59 days = %+v", s)
	}
	if s := d.Stale(i.BuildTime.Add(61*24*time.Hour), 60*24*time.Hour); len(s) != 1 || s[0].Path != i.Path {
		t.Errorf("Stale after 61 days = %+v", s)
	}
}

// TestEmbeddedMetadata checks that the embedded file is the combined IPv4
// and IPv6 one.
func TestEmbeddedMetadata(t *testing.T) {
	r, err := maxminddb.OpenBytes(embeddedCountryMMDB)
	if err != nil {
		t.Fatal(err)
	}
	if r.Metadata.IPVersion != 6 || r.Metadata.DatabaseType != "country ipvAll" {
		t.Errorf("metadata = %+v, want ip_version 6, country ipvAll", r.Metadata)
	}
}

func TestEmbeddedWithASN(t *testing.T) {
	fx := fixtures(t)
	d := mustOpen(t, Config{ASNPath: fx.geoLite2ASN})
	if got := d.LookupWithOrg(addr("77.88.8.8")); got != (Result{Country: [2]byte{'R', 'U'}, ASN: 13238, Org: "YANDEX LLC"}) {
		t.Errorf("Lookup = %+v", got)
	}
	info := d.Info()
	if len(info) != 2 || info[1].Path != fx.geoLite2ASN || info[1].Role != "asn" || info[1].Type != "GeoLite2-ASN" ||
		!info[1].BuildTime.Equal(fixtureEpoch) || info[1].Description != "GeoLite2 ASN database (test)" || info[1].Attribution != "" {
		t.Errorf("Info = %+v", info)
	}
	if s := d.Stale(fixtureEpoch.Add(time.Hour), 2*time.Hour); len(s) != 0 {
		t.Errorf("Stale = %+v, want none", s)
	}
}

func TestInfoStale(t *testing.T) {
	fx := fixtures(t)
	dir := t.TempDir()
	old := writeMMDB(t, dir, "old.mmdb", mmdbwriter.Options{
		DatabaseType: "GeoLite2-ASN", BuildEpoch: fixtureEpoch.Add(-90 * 24 * time.Hour).Unix(),
	}, asnNets())
	d := mustOpen(t, Config{CountryPath: fx.geoLite2Country, ASNPath: old})
	info := d.Info()
	if len(info) != 2 || info[0].Path != fx.geoLite2Country || info[0].Type != "GeoLite2-Country" ||
		!info[0].BuildTime.Equal(fixtureEpoch) || info[0].Description != "GeoLite2 Country database (test)" {
		t.Fatalf("Info = %+v", info)
	}
	now := fixtureEpoch.Add(24 * time.Hour)
	s := d.Stale(now, 60*24*time.Hour)
	if len(s) != 1 || s[0].Path != old || !s[0].BuildTime.Equal(fixtureEpoch.Add(-90*24*time.Hour)) {
		t.Errorf("Stale(60 days) = %+v, want only %s", s, old)
	}
	if s := d.Stale(now, time.Hour); len(s) != 2 {
		t.Errorf("Stale(1h) = %+v, want both", s)
	}
}

// TestLookupAllocs enforces the allocation goals.
func TestLookupAllocs(t *testing.T) {
	fx := fixtures(t)
	emb := mustOpen(t, Config{})
	full := mustOpen(t, Config{CountryPath: fx.geoLite2Country, ASNPath: fx.geoLite2ASN})
	ipl := mustOpen(t, Config{CountryPath: fx.ipldbCountry, ASNPath: fx.ipldbASN})
	for _, tc := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"embedded IPv4", 0, func() { emb.Lookup(addr("77.88.8.8")) }},
		{"embedded IPv6", 0, func() { emb.Lookup(addr("2a02:6b8::feed:0ff")) }},
		{"embedded miss", 0, func() { emb.Lookup(addr("10.0.0.1")) }},
		{"GeoLite2 country+ASN", 0, func() { full.Lookup(addr("2001:4860::1")) }},
		{"ip-location-db country+ASN", 0, func() { ipl.Lookup(addr("8.8.8.8")) }},
		{"GeoLite2 with org", 1, func() { full.LookupWithOrg(addr("77.88.8.8")) }},
		{"LookupOrg", 1, func() { full.LookupOrg(addr("77.88.8.8")) }},
	} {
		if n := testing.AllocsPerRun(200, tc.f); n > tc.max {
			t.Errorf("%s: %v allocs per lookup, want at most %v", tc.name, n, tc.max)
		}
	}
}

// replaceFile writes data to a temporary file beside path and renames it
// over path, as geoipupdate does.
func replaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func buildBytes(t testing.TB, opts mmdbwriter.Options, nets []network) []byte {
	t.Helper()
	p := writeMMDB(t, t.TempDir(), "x.mmdb", opts, nets)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReloaderWatch(t *testing.T) {
	fx := fixtures(t)
	r, err := NewReloader(Config{CountryPath: fx.ipldbCountry, ASNPath: fx.geoLite2ASN})
	if err != nil {
		t.Fatal(err)
	}
	start := r.Stats()
	if start.Reloads != 0 || start.Failures != 0 || time.Since(start.LastSuccess) > time.Minute {
		t.Fatalf("Stats = %+v", start)
	}
	first := r.DB()
	events := make(chan error, 10)
	r.OnReload = func(err error) { events <- err }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { r.Watch(ctx, 5*time.Millisecond) })
	defer func() { cancel(); wg.Wait() }()
	wait := func() error {
		t.Helper()
		select {
		case err := <-events:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not reload")
			return nil
		}
	}
	quiet := func() {
		t.Helper()
		select {
		case err := <-events:
			t.Fatalf("unexpected reload: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	quiet() // nothing changed: no reload

	// Yandex moves to Kazakhstan: picked up.
	nets := countryCodeNets()
	nets[0].record = countryCode("KZ")
	replaceFile(t, fx.ipldbCountry, buildBytes(t, mmdbwriter.Options{DatabaseType: "country ipvAll", DisableIPv4Aliasing: true}, nets))
	if err := wait(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := r.DB().Lookup(addr("77.88.8.8")); got != res("KZ", 13238) {
		t.Errorf("after reload: Lookup = %+v", got)
	}
	if got := first.Lookup(addr("77.88.8.8")); got != res("RU", 13238) {
		t.Errorf("old DB changed: Lookup = %+v", got)
	}
	if s := r.Stats(); s.Reloads != 1 || s.Failures != 0 || !s.LastSuccess.After(start.LastSuccess) {
		t.Errorf("Stats = %+v", s)
	}
	quiet()

	// A corrupt replacement of the ASN file: the old DB stays, the error
	// names the file, and it is reported once.
	good := r.DB()
	replaceFile(t, fx.geoLite2ASN, []byte("garbage"))
	err = wait()
	if err == nil || !strings.Contains(err.Error(), fx.geoLite2ASN) {
		t.Fatalf("corrupt reload: err = %v, want one naming %s", err, fx.geoLite2ASN)
	}
	if r.DB() != good {
		t.Error("a failed reload replaced the DB")
	}
	if s := r.Stats(); s.Reloads != 2 || s.Failures != 1 {
		t.Errorf("Stats = %+v", s)
	}
	quiet()

	// Removed, then fixed.
	if err := os.Remove(fx.geoLite2ASN); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
	quiet()
	asn := asnNets()
	asn[0].record = asnRecord(13238, "YANDEX")
	replaceFile(t, fx.geoLite2ASN, buildBytes(t, mmdbwriter.Options{DatabaseType: "GeoLite2-ASN"}, asn))
	if err := wait(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := r.DB().LookupOrg(addr("77.88.8.8")); got != "YANDEX" {
		t.Errorf("after reload: LookupOrg = %q", got)
	}
	if s := r.Stats(); s.Reloads != 4 || s.Failures != 2 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestReloaderReload(t *testing.T) {
	fx := fixtures(t)
	r, err := NewReloader(Config{CountryPath: fx.geoLite2Country})
	if err != nil {
		t.Fatal(err)
	}
	old := r.DB()
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if r.DB() == old {
		t.Error("Reload kept the old DB")
	}
	// Truncated in place (not atomically): Reload fails, the DB stays.
	b, _ := os.ReadFile(fx.geoLite2Country)
	if err := os.WriteFile(fx.geoLite2Country, b[:len(b)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	cur := r.DB()
	err = r.Reload()
	if err == nil || !strings.Contains(err.Error(), fx.geoLite2Country) {
		t.Fatalf("Reload = %v, want an error naming %s", err, fx.geoLite2Country)
	}
	if r.DB() != cur || r.DB().Lookup(addr("77.88.8.8")).CountryCode() != "RU" {
		t.Error("failed Reload changed the DB")
	}
	if s := r.Stats(); s.Reloads != 2 || s.Failures != 1 {
		t.Errorf("Stats = %+v", s)
	}
	if _, err := NewReloader(Config{CountryPath: fx.geoLite2Country}); err == nil {
		t.Error("NewReloader on a truncated file succeeded")
	}
}

// TestConcurrentLookupReload runs lookups while reloading (meant for -race).
func TestConcurrentLookupReload(t *testing.T) {
	fx := fixtures(t)
	r, err := NewReloader(Config{CountryPath: fx.geoLite2Country, ASNPath: fx.geoLite2ASN})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				for _, c := range commonCases {
					got := r.DB().LookupWithOrg(addr(c.addr))
					if got.Country != c.want.Country || got.ASN != c.want.ASN {
						t.Errorf("Lookup(%s) = %+v", c.addr, got)
						return
					}
				}
			}
		})
	}
	for range 20 {
		if err := r.Reload(); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

// Benchmarks. Each reports lookups/s beside ns/op and allocs/op.

func reportRate(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lookups/s")
}

// randomPublic4 returns n random globally routed IPv4 addresses.
func randomPublic4(rng *rand.Rand, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		v := rng.Uint32()
		a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if _, ok := normalize(a); ok {
			out = append(out, a)
		}
	}
	return out
}

func benchLookup(b *testing.B, d *DB, addrs []netip.Addr) {
	b.ReportAllocs()
	var n int
	var found int
	for b.Loop() {
		if d.Lookup(addrs[n%len(addrs)]).Country != [2]byte{} {
			found++
		}
		n++
	}
	reportRate(b, n)
	b.ReportMetric(float64(found)/float64(n), "hit-ratio")
}

func BenchmarkLookupEmbedded(b *testing.B) {
	d := mustOpen(b, Config{})
	benchLookup(b, d, randomPublic4(rand.New(rand.NewPCG(1, 2)), 1<<16))
}

func BenchmarkLookupEmbeddedParallel(b *testing.B) {
	d := mustOpen(b, Config{})
	addrs := randomPublic4(rand.New(rand.NewPCG(1, 2)), 1<<16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			d.Lookup(addrs[i%len(addrs)])
			i++
		}
	})
	reportRate(b, b.N)
}

// BenchmarkLookupIPv6 looks up random addresses inside random IPv6 networks
// of the embedded database (random 2000::/3 addresses would mostly miss).
func BenchmarkLookupIPv6(b *testing.B) {
	d := mustOpen(b, Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	var nets []netip.Prefix
	for r := range d.country.reader.NetworksWithin(netip.MustParsePrefix("2000::/3")) {
		nets = append(nets, r.Prefix())
	}
	addrs := make([]netip.Addr, 1<<16)
	for i := range addrs {
		p := nets[rng.IntN(len(nets))]
		a := p.Addr().As16()
		for bit := p.Bits(); bit < 128; bit++ {
			if rng.IntN(2) == 1 {
				a[bit/8] |= 0x80 >> (bit % 8)
			}
		}
		addrs[i] = netip.AddrFrom16(a)
	}
	benchLookup(b, d, addrs)
}

// BenchmarkLookupFixtureASN uses a GeoLite2-Country and a GeoLite2-ASN
// fixture of 20,000 networks each, so that Lookup walks two trees.
func BenchmarkLookupFixtureASN(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	var cnets, anets []network
	var addrs []netip.Addr
	seen := map[netip.Prefix]bool{}
	for len(cnets) < 20000 {
		a := randomPublic4(rng, 1)[0]
		p := netip.PrefixFrom(a, 24).Masked()
		if seen[p] {
			continue
		}
		seen[p] = true
		cc := string([]byte{byte('A' + rng.IntN(26)), byte('A' + rng.IntN(26))})
		cnets = append(cnets, network{p.String(), geoip2Country(cc, "Country "+cc, uint32(rng.IntN(1e6)))})
		asn := uint32(1 + rng.IntN(400000))
		anets = append(anets, network{p.String(), asnRecord(asn, "ORG-"+cc+"-"+p.Addr().String())})
		addrs = append(addrs, p.Addr().Next())
	}
	dir := b.TempDir()
	d := mustOpen(b, Config{
		CountryPath: writeMMDB(b, dir, "c.mmdb", mmdbwriter.Options{DatabaseType: "GeoLite2-Country", RecordSize: 28}, cnets),
		ASNPath:     writeMMDB(b, dir, "a.mmdb", mmdbwriter.Options{DatabaseType: "GeoLite2-ASN", RecordSize: 28}, anets),
	})
	rng.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	b.Run("Lookup", func(b *testing.B) { benchLookup(b, d, addrs) })
	b.Run("LookupWithOrg", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			d.LookupWithOrg(addrs[n%len(addrs)])
			n++
		}
		reportRate(b, n)
	})
}

// TestEmbeddedShape walks the whole embedded database, as Open does for a
// file, and checks the shape embeddedCountry takes for granted.
func TestEmbeddedShape(t *testing.T) {
	s, err := newSource(embeddedCountryMMDB, embeddedCountryPath, "country", true)
	if err != nil {
		t.Fatal(err)
	}
	if !s.hasCountry || s.hasASN {
		t.Errorf("embedded database: country %v, ASN %v; embeddedCountry assumes true, false", s.hasCountry, s.hasASN)
	}
}
