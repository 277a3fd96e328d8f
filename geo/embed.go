package geo

import (
	_ "embed"
	"strings"
	"sync"
)

// The embedded default country database; geo/data/README.md says where it
// comes from and `make geo-refresh` replaces it.
var (
	//go:embed data/geo-whois-asn-country.mmdb
	embeddedCountryMMDB []byte
	//go:embed data/VERSION
	embeddedVersion string
)

// Attribution is the notice that the licence of the embedded country
// database (CC BY 4.0, NRO) requires wherever its data is shown or shipped.
const Attribution = "Country data: ip-location-db geo-whois-asn-country " +
	"(https://github.com/sapics/ip-location-db), derived from RIR statistics " +
	"by the Number Resource Organization (https://www.nro.net), licensed under CC BY 4.0"

// embeddedCountryPath is DBInfo.Path of the embedded country database.
var embeddedCountryPath = "embedded:" + strings.TrimSpace(embeddedVersion) + "/geo-whois-asn-country.mmdb"

// embeddedCountry opens the embedded database once and shares it between
// DBs: it is read-only. Its whole tree is not walked at every start (75 ms):
// TestEmbeddedShape walks it, and its shape is known — country codes, no
// ASN.
var embeddedCountry = sync.OnceValues(func() (*source, error) {
	s, err := newSource(embeddedCountryMMDB, embeddedCountryPath, "country", false)
	if err != nil {
		return nil, err
	}
	s.hasCountry, s.hasASN = true, false
	s.info.Attribution = Attribution
	return s, nil
})
