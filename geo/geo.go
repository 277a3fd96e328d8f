package geo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// Config names the database files. Both may be empty.
type Config struct {
	// CountryPath is a country (or city) database. Empty means the embedded
	// default (see the package documentation).
	CountryPath string
	// ASNPath is an ASN database. Empty means no ASN lookups: no ASN data is
	// embedded.
	ASNPath string
}

// Result is what a lookup found. Its zero value means nothing is known.
type Result struct {
	// Country is the ISO 3166-1 alpha-2 code in upper case, zero if unknown.
	Country [2]byte
	// ASN is the autonomous system number, 0 if unknown.
	ASN uint32
	// Org is the AS organisation. Only LookupWithOrg fills it; it may be "".
	Org string
}

// CountryCode returns Country as a string ("RU"), or "" if it is unknown. It
// does not allocate for codes of two upper-case letters.
func (r Result) CountryCode() string {
	c0, c1 := r.Country[0], r.Country[1]
	if c0 >= 'A' && c0 <= 'Z' && c1 >= 'A' && c1 <= 'Z' {
		i := (int(c0-'A')*26 + int(c1-'A')) * 2
		return countryCodes[i : i+2]
	}
	if r.Country == [2]byte{} {
		return ""
	}
	return string(r.Country[:])
}

// countryCodes holds every pair of letters "AAABAC…ZZ" so that CountryCode
// can return a substring instead of allocating.
var countryCodes = func() string {
	var b strings.Builder
	b.Grow(26 * 26 * 2)
	for c0 := byte('A'); c0 <= 'Z'; c0++ {
		for c1 := byte('A'); c1 <= 'Z'; c1++ {
			b.WriteByte(c0)
			b.WriteByte(c1)
		}
	}
	return b.String()
}()

// DBInfo describes one loaded database file.
type DBInfo struct {
	// Path is the file path, or "embedded:<npm package>@<version>/<file>" for
	// the built-in database.
	Path string
	// Role is "country" or "asn": the Config field the file was given in.
	Role string
	// Type is the metadata database_type, e.g. "GeoLite2-Country".
	Type string
	// BuildTime is the metadata build_epoch.
	BuildTime time.Time
	// Description is the metadata description in English (or in the only
	// language given); it may be "".
	Description string
	// Attribution is the notice the data's licence requires to be shown, set
	// for the embedded database; "" for files given in Config.
	Attribution string
}

// DB answers lookups from one country database and an optional ASN
// database. It is immutable and safe for concurrent use.
type DB struct {
	country *source // never nil
	asn     *source // nil without an ASN database
}

// source is one opened mmdb file.
type source struct {
	info     DBInfo
	path     string // "" for embedded
	id       fileID // identity of the file read, for Reloader.Watch
	reader   *maxminddb.Reader
	dec      *mmdbdata.Decoder // over the data section, for CursorAt
	dataSize uint
	ipv4Only bool
	// hasCountry and hasASN say which fields the file carries.
	hasCountry, hasASN bool
	errs               atomic.Uint64
}

// Open opens the databases named by cfg; see the package documentation for
// the formats accepted. It reads and checks every record, so it takes tens
// of milliseconds for a country database (about 75 ms for the embedded one)
// and more for a city database. Errors name the file.
func Open(cfg Config) (*DB, error) {
	d := &DB{}
	var err error
	if cfg.CountryPath == "" {
		d.country, err = embeddedCountry()
	} else {
		d.country, err = openFile(cfg.CountryPath, "country")
	}
	if err != nil {
		return nil, err
	}
	if !d.country.hasCountry {
		return nil, fmt.Errorf("geo: %s: database type %q has no country data (country.iso_code or country_code)",
			d.country.info.Path, d.country.info.Type)
	}
	if cfg.ASNPath != "" {
		d.asn, err = openFile(cfg.ASNPath, "asn")
		if err != nil {
			return nil, err
		}
		if !d.asn.hasASN {
			return nil, fmt.Errorf("geo: %s: database type %q has no ASN data (autonomous_system_number)",
				d.asn.info.Path, d.asn.info.Type)
		}
	}
	return d, nil
}

// openFile reads path whole into memory and checks it. Reading instead of
// memory-mapping keeps a file that is rewritten in place from faulting
// lookups that are running.
func openFile(path, role string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("geo: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("geo: %s: not a regular file", path)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("geo: %s: empty file", path)
	}
	if int64(int(fi.Size())) != fi.Size() {
		return nil, fmt.Errorf("geo: %s: file too large", path)
	}
	data := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("geo: %s: read: %w", path, err)
	}
	s, err := newSource(data, path, role, true)
	if err != nil {
		return nil, err
	}
	s.path = path
	s.id = idOf(fi)
	return s, nil
}

// metadataMarker starts the metadata section of an mmdb file.
var metadataMarker = []byte("\xAB\xCD\xEFMaxMind.com")

// newSource opens data, which must stay unchanged for the source's lifetime.
// name is used in errors and as DBInfo.Path.
// newSource opens an mmdb held in data; verify walks the whole tree first
// (files from disk; the embedded database is walked by its test instead,
// which saves every start-up the walk).
func newSource(data []byte, name, role string, verify bool) (*source, error) {
	r, err := maxminddb.OpenBytes(data)
	if err != nil {
		return nil, fmt.Errorf("geo: %s: %w", name, err)
	}
	md := r.Metadata
	// The cursor decoder needs the data section that Result.Offset is
	// relative to: after the search tree and its 16-byte separator, up to
	// the metadata marker. OpenBytes has checked these bounds already.
	end := bytes.LastIndex(data, metadataMarker)
	start := md.NodeCount*(md.RecordSize/4) + 16
	if end < 0 || start > uint(end) {
		return nil, fmt.Errorf("geo: %s: invalid MaxMind DB layout", name)
	}
	s := &source{
		reader:   r,
		dec:      mmdbdata.NewDecoder(data[start:end], 0, mmdbdata.WithStringCache()),
		dataSize: uint(end) - start,
		ipv4Only: md.IPVersion == 4,
		info: DBInfo{
			Path:        name,
			Role:        role,
			Type:        md.DatabaseType,
			BuildTime:   md.BuildTime().UTC(),
			Description: description(md.Description),
		},
	}
	if verify {
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("geo: %s: %w", name, err)
		}
	}
	return s, nil
}

func description(m map[string]string) string {
	if d, ok := m["en"]; ok {
		return d
	}
	if len(m) == 1 { // one language other than English: use it
		for _, d := range m {
			return d
		}
	}
	return ""
}

// check walks the whole search tree and decodes every record once. It
// replaces maxminddb's Reader.Verify, which rejects files this package reads
// well (ip-location-db files have no description in their metadata). It
// rejects a damaged tree, a pointer outside the data section and a record
// whose known fields have the wrong type, and learns which fields the file
// carries. It takes about 75 ms for the embedded file (one million
// networks).
func (s *source) check() error {
	seen := make([]uint64, s.dataSize/64+1) // bitmap of record offsets decoded
	for res := range s.reader.Networks() {
		if err := res.Err(); err != nil {
			return err
		}
		off := uint(res.Offset())
		if off >= s.dataSize {
			return fmt.Errorf("record for %s: offset %d outside the data section", res.Prefix(), off)
		}
		if seen[off/64]&(1<<(off%64)) != 0 {
			continue
		}
		seen[off/64] |= 1 << (off % 64)
		var f fields
		if err := walk(s.dec.CursorAt(off), &f, true); err != nil {
			return fmt.Errorf("record for %s: %w", res.Prefix(), err)
		}
		s.hasCountry = s.hasCountry || f.country != [2]byte{}
		s.hasASN = s.hasASN || f.hasASN
	}
	return nil
}

// Lookup returns the country and AS number of a, without the AS
// organisation. It does not allocate. Private and other non-global
// addresses return the zero Result.
func (d *DB) Lookup(a netip.Addr) Result {
	return d.lookup(a, false)
}

// LookupWithOrg is Lookup with Result.Org filled from the ASN database. It
// allocates at most once, for the organisation string.
func (d *DB) LookupWithOrg(a netip.Addr) Result {
	return d.lookup(a, true)
}

// LookupOrg returns the AS organisation of a, or "". It allocates at most
// once.
func (d *DB) LookupOrg(a netip.Addr) string {
	a, ok := normalize(a)
	if !ok {
		return ""
	}
	var f fields
	if d.asn != nil && d.asn.lookup(a, &f, true) && f.hasASN {
		return f.org
	}
	if d.country.hasASN {
		f = fields{}
		d.country.lookup(a, &f, true)
	}
	return f.org
}

func (d *DB) lookup(a netip.Addr, wantOrg bool) Result {
	a, ok := normalize(a)
	if !ok {
		return Result{}
	}
	var c fields
	d.country.lookup(a, &c, wantOrg)
	r := Result{Country: c.country, ASN: c.asn, Org: c.org}
	if d.asn != nil {
		var f fields
		if d.asn.lookup(a, &f, wantOrg) {
			if f.hasASN {
				r.ASN, r.Org = f.asn, f.org
			}
			if r.Country == [2]byte{} {
				r.Country = f.country
			}
		}
	}
	return r
}

// lookup decodes the record of a into f and reports whether there was one.
func (s *source) lookup(a netip.Addr, f *fields, wantOrg bool) bool {
	if s.ipv4Only && !a.Is4() {
		return false
	}
	res := s.reader.Lookup(a)
	if !res.Found() {
		if res.Err() != nil {
			s.errs.Add(1)
		}
		return false
	}
	if err := walk(s.dec.CursorAt(uint(res.Offset())), f, wantOrg); err != nil {
		s.errs.Add(1)
		*f = fields{}
		return false
	}
	return true
}

// LookupErrors counts lookups that found a record this package could not
// decode (a database whose records do not have the documented shape). Such
// lookups return what is unknown as zero.
func (d *DB) LookupErrors() uint64 {
	n := d.country.errs.Load()
	if d.asn != nil {
		n += d.asn.errs.Load()
	}
	return n
}

// Info describes the loaded databases: the country database first, then the
// ASN database if there is one.
func (d *DB) Info() []DBInfo {
	out := []DBInfo{d.country.info}
	if d.asn != nil {
		out = append(out, d.asn.info)
	}
	return out
}

// Stale returns the databases built more than maxAge before now.
func (d *DB) Stale(now time.Time, maxAge time.Duration) []DBInfo {
	var out []DBInfo
	for _, i := range d.Info() {
		if now.Sub(i.BuildTime) > maxAge {
			out = append(out, i)
		}
	}
	return out
}

// files returns the identities of the files the DB was read from, by path.
func (d *DB) files() map[string]fileID {
	m := make(map[string]fileID, 2)
	for _, s := range []*source{d.country, d.asn} {
		if s != nil && s.path != "" {
			m[s.path] = s.id
		}
	}
	return m
}

// fields is what walk takes out of one record.
type fields struct {
	country [2]byte
	asn     uint32
	hasASN  bool
	org     string
}

var errNotUint32 = errors.New("does not fit 32 bits")

// walk decodes the fields this package knows from the record map at c. It
// reads the country code as bytes aliasing the database, so only the
// organisation (read when wantOrg) can allocate.
func walk(c mmdbdata.Cursor, f *fields, wantOrg bool) error {
	m, err := c.Map()
	if err != nil {
		return err
	}
	var (
		next       mmdbdata.Cursor
		registered [2]byte
	)
	for {
		key, v, ok := m.Next(next)
		if !ok {
			break
		}
		switch string(key) {
		case "country":
			next, err = isoCode(v, &f.country)
		case "registered_country":
			next, err = isoCode(v, &registered)
		case "country_code":
			next, err = code(v, &f.country)
		case "autonomous_system_number":
			var n uint64
			n, next, err = v.ReadUint()
			if err == nil && n > 1<<32-1 {
				err = errNotUint32
			}
			f.asn, f.hasASN = uint32(n), err == nil
		case "autonomous_system_organization":
			if wantOrg {
				f.org, next, err = v.ReadString()
			} else {
				next, err = v.Skip()
			}
		default:
			next, err = v.Skip()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	if err := m.Err(); err != nil {
		return err
	}
	if f.country == [2]byte{} {
		f.country = registered
	}
	return nil
}

// isoCode reads iso_code from the map at v (a GeoIP2 country object) into
// dst and returns the cursor after the map.
func isoCode(v mmdbdata.Cursor, dst *[2]byte) (mmdbdata.Cursor, error) {
	m, err := v.Map()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	var next mmdbdata.Cursor
	for {
		key, kv, ok := m.Next(next)
		if !ok {
			break
		}
		if string(key) == "iso_code" {
			if _, err := code(kv, dst); err != nil {
				return mmdbdata.Cursor{}, err
			}
			break // the rest is names and ids: skip the map as a whole
		}
		if next, err = kv.Skip(); err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	if err := m.Err(); err != nil {
		return mmdbdata.Cursor{}, err
	}
	return v.Skip()
}

// code reads a country code string at v into dst and returns the cursor
// after it. Anything but two ASCII letters, and "ZZ" (unknown), leaves dst
// zero.
func code(v mmdbdata.Cursor, dst *[2]byte) (mmdbdata.Cursor, error) {
	// ReadMapKey decodes a string (map keys are strings) and returns its
	// bytes aliasing the database, where ReadString would copy them.
	b, _, err := v.ReadMapKey()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	*dst = [2]byte{}
	if len(b) == 2 {
		c0, c1 := upper(b[0]), upper(b[1])
		if c0 >= 'A' && c0 <= 'Z' && c1 >= 'A' && c1 <= 'Z' && (c0 != 'Z' || c1 != 'Z') {
			*dst = [2]byte{c0, c1}
		}
	}
	return v.Skip()
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}
