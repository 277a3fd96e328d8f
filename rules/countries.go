package rules

// assignedCountries lists the 249 officially assigned ISO 3166-1 alpha-2
// codes, space-separated and sorted. Source: Debian iso-codes 4.15.0
// (iso_3166-1.json), identical to the list in tzdata 2025b's iso3166.tab
// ("current as of ISO/TC 46 N1108 (2023-04-05)"). TestCountryList pins the
// count and the order.
const assignedCountries = "" +
	"AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE " +
	"BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD " +
	"CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM " +
	"DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF " +
	"GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU " +
	"ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN " +
	"KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME " +
	"MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA " +
	"NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM " +
	"PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI " +
	"SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK " +
	"TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI " +
	"VN VU WF WS YE YT ZA ZM ZW"

// extraCountries are accepted although ISO 3166-1 has not assigned them:
// XK (Kosovo) is a user-assigned code that GeoIP databases (MaxMind,
// DB-IP) report for Kosovo.
const extraCountries = "XK"

// countryIndex maps a code of two upper-case ASCII letters to 0..675, or
// -1 for anything else.
func countryIndex(s string) int {
	if len(s) != 2 || s[0] < 'A' || s[0] > 'Z' || s[1] < 'A' || s[1] > 'Z' {
		return -1
	}
	return int(s[0]-'A')*26 + int(s[1]-'A')
}

// validCountries has a true for every code the parser accepts.
var validCountries = func() (t [26 * 26]bool) {
	for _, list := range []string{assignedCountries, extraCountries} {
		for i := 0; i+2 <= len(list); i += 3 {
			t[countryIndex(list[i:i+2])] = true
		}
	}
	return t
}()

// countryHints explains codes people write that ISO 3166-1 does not
// assign (exceptionally or transitionally reserved ones).
var countryHints = map[string]string{
	"UK": `not an assigned code; the United Kingdom is "GB"`,
	"EL": `not an assigned code; Greece is "GR"`,
	"EU": "reserved for the European Union, not a country; list the member states",
	"SU": "transitionally reserved (USSR), not a country; use the successor states, e.g. \"RU\"",
	"UN": "reserved for the United Nations, not a country",
}

// checkCountry validates a country code and returns the problem, or "".
func checkCountry(s string) string {
	if s == "" {
		return "must not be empty"
	}
	if up := upperASCII(s); up != s && countryIndex(up) >= 0 {
		return "must be upper case; write " + quote(up)
	}
	if countryIndex(s) < 0 {
		return "must be an ISO 3166-1 alpha-2 code of two letters, as in \"RU\""
	}
	if h, ok := countryHints[s]; ok {
		return h
	}
	if !validCountries[countryIndex(s)] {
		return "not an assigned ISO 3166-1 alpha-2 code"
	}
	return ""
}
