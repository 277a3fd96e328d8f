// Package geo maps an IP address to its country (ISO 3166-1 alpha-2) and
// autonomous system from MaxMind DB (mmdb) files, with a built-in country
// database so that the sensor can tell Russian-hosted endpoints without any
// download.
//
// # Databases accepted
//
// [Open] takes one country database and one optional ASN database. Every file
// is read through github.com/oschwald/maxminddb-golang/v2 and decoded by one
// hand-written walker that understands these record shapes:
//
//   - MaxMind GeoLite2/GeoIP2-Country and -City, DB-IP country/city lite
//     (database_type GeoLite2-*, GeoIP2-*, DBIP-*): country.iso_code, falling
//     back to registered_country.iso_code when a record has no country;
//   - ip-location-db *-country-mmdb, e.g. geo-whois-asn-country-mmdb
//     (database_type "country ipvAll"): country_code;
//   - MaxMind GeoLite2-ASN, GeoIP2-ISP, DB-IP asn lite, ip-location-db
//     asn-mmdb: autonomous_system_number, autonomous_system_organization.
//
// Formats are told apart by the fields their records carry, not by
// metadata.database_type (which [DB.Info] reports), so a database of another
// type with these fields is accepted too. A country path whose records hold
// no country field, or an ASN path whose records hold no ASN number, is an
// error: it catches swapped flags. The country code "ZZ" (unknown) and
// anything that is not two ASCII letters read as unknown.
// github.com/oschwald/geoip2-golang/v2 is not used at run time: its typed
// structs decode names and other fields that the sensor does not need, and it
// refuses the ip-location-db types; the tests use it to check this package
// against it on GeoIP2-shaped files.
//
// Files are read whole into memory (not memory-mapped), so a file rewritten in
// place can never fault a running lookup. [Open] then walks the whole search
// tree and decodes every distinct record once (about 75 ms for the embedded
// file), so a truncated or corrupt file is an error at Open, not a run of
// silent misses later; maxminddb's own Reader.Verify is not used because it
// rejects valid files without a metadata description, as ip-location-db's
// are. A [DB] holds no OS resources.
//
// # Embedded default
//
// With an empty [Config.CountryPath] the country database built into the
// binary is used: geo-whois-asn-country.mmdb (IPv4 and IPv6 in one file, about
// 7.8 MB, stored uncompressed because it is under 10 MB) from the npm package
// @ip-location-db/geo-whois-asn-country-mmdb by sapics. The npm metadata says
// CC0-1.0, but the data is derived from the RIRs' statistics published by the
// NRO under CC BY 4.0, which requires attribution to nro.net; [Attribution]
// holds the text to show. geo/data/README.md gives version, date and
// checksum, and `make geo-refresh` replaces it. Upstream warns that its npm
// data has known errors and that npm releases stop, and the file is already
// older than the sensor's 60-day limit ([DB.Stale] reports it): it is a
// fallback, and production sensors should configure a maintained database.
//
// No ASN data is embedded: @ip-location-db/asn-mmdb is not published on npm,
// and the ASN data that is (@ip-location-db/asn, CSV) is CC BY 4.0 from
// RouteViews and DB-IP, not public domain. ASN lookups need an ASN file
// (e.g. GeoLite2-ASN or dbip-asn-lite) in [Config.ASNPath].
//
// # Lookups and allocations
//
// [DB.Lookup] returns country and AS number with no heap allocation: the
// country code is read as bytes out of the database and the number as an
// integer. The AS organisation is a string and so may cost one allocation
// (none when maxminddb's string cache already holds it); it is returned only
// by [DB.LookupOrg] and [DB.LookupWithOrg]. IPv4-mapped IPv6 addresses
// (::ffff:a.b.c.d) and NAT64 addresses (64:ff9b::a.b.c.d) are looked up as
// their IPv4 address; private, loopback, link-local, multicast, shared
// (100.64/10), documentation, benchmarking and other non-global addresses, and
// IPv6 outside 2000::/3, return the zero [Result] without touching the
// databases. A DB is immutable and safe for concurrent use.
//
// # Reload
//
// [Reloader] holds the current DB behind an atomic pointer. Reload re-opens
// every file and keeps the old DB if any file fails; Watch polls the files'
// identity (device, inode, size, modification time) and reloads when one was
// replaced, as geoipupdate does with an atomic rename. Signals are left to
// package main.
package geo
