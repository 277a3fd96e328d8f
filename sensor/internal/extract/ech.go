package extract

import "encoding/binary"

// echVersion is the ECHConfig version of draft-ietf-tls-esni (final
// revisions, RFC 9849), the same codepoint as the ClientHello extension.
const echVersion = 0xfe0d

// ECHConfig is what the sensor reads from one ECHConfig of an
// ECHConfigList, as published in the "ech" SvcParam of DNS HTTPS and SVCB
// records (RFC 9460 §9 and the ECH DNS draft). PublicName aliases the
// input: it is the outer name clients will put in their ClientHello's
// server_name, not the name they connect to.
type ECHConfig struct {
	Version    uint16
	ConfigID   uint8
	KEMID      uint16
	PublicName []byte // nil for versions the sensor does not read
}

// ParseECHConfigList calls fn for each ECHConfig of an ECHConfigList
// (a 2-byte length, then configs). Configs of unknown versions are
// reported with their version only, as the standard asks clients to skip
// them. It returns ErrMalformed when a length does not fit; configs
// before the bad one have been reported.
func ParseECHConfigList(b []byte, fn func(ECHConfig)) error {
	if len(b) < 2 {
		return ErrMalformed
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n != len(b) {
		return ErrMalformed
	}
	for len(b) > 0 {
		if len(b) < 4 {
			return ErrMalformed
		}
		v, l := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		if len(b) < 4+l {
			return ErrMalformed
		}
		body := b[4 : 4+l]
		b = b[4+l:]
		c := ECHConfig{Version: v}
		if v == echVersion {
			if err := parseECHConfigContents(body, &c); err != nil {
				return err
			}
		}
		fn(c)
	}
	return nil
}

// parseECHConfigContents reads ECHConfigContents: HpkeKeyConfig
// (config_id, kem_id, public_key<1..2^16-1>, cipher_suites<4..2^16-4>),
// maximum_name_length, public_name<1..255>, extensions<0..2^16-1>.
func parseECHConfigContents(b []byte, c *ECHConfig) error {
	if len(b) < 5 {
		return ErrMalformed
	}
	c.ConfigID = b[0]
	c.KEMID = binary.BigEndian.Uint16(b[1:])
	pk := int(binary.BigEndian.Uint16(b[3:]))
	b = b[5:]
	if pk == 0 || len(b) < pk+2 {
		return ErrMalformed
	}
	b = b[pk:]
	cs := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if cs < 4 || cs%4 != 0 || len(b) < cs+2 {
		return ErrMalformed
	}
	b = b[cs+1:] // cipher suites, maximum_name_length
	name := int(b[0])
	b = b[1:]
	if name == 0 || len(b) < name+2 {
		return ErrMalformed
	}
	c.PublicName = b[:name:name]
	b = b[name:]
	if int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		return ErrMalformed
	}
	return nil
}
