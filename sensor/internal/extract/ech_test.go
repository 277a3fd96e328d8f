package extract

import (
	"encoding/base64"
	"testing"
)

// echConfig builds an ECHConfig of version 0xfe0d.
func echConfig(id byte, publicName string, exts []byte) []byte {
	contents := cat([]byte{id}, be16(0x0020), vec16(make([]byte, 32)), vec16([]byte{0, 1, 0, 1, 0, 1, 0, 3}), []byte{0}, vec8([]byte(publicName)), vec16(exts))
	return cat(be16(echVersion), vec16(contents))
}

func TestParseECHConfigList(t *testing.T) {
	// The ech SvcParam of crypto.cloudflare.com's HTTPS record as served
	// in 2024 (public name cloudflare-ech.com).
	cf, err := base64.StdEncoding.DecodeString("AEX+DQBBpQAgACDgLrm9eb/Ty7mTKlaBoVW7ZdXfmdh1hfzfKmqYOTkrYQAEAAEAAQASY2xvdWRmbGFyZS1lY2guY29tAAA=")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		in    []byte
		names []string
		err   error
	}{
		{"cloudflare", cf, []string{"cloudflare-ech.com"}, nil},
		{"two configs, unknown version skipped", vec16(echConfig(7, "a.example", nil), be16(0xfe0a), vec16([]byte{1, 2, 3}), echConfig(8, "b.example", be16(0))), []string{"a.example", "", "b.example"}, nil},
		{"empty list", vec16(), nil, nil},
		{"list length lies", append(vec16(echConfig(1, "x", nil)), 0), nil, ErrMalformed},
		{"config cut", vec16(echConfig(1, "x", nil)[:10]), nil, ErrMalformed},
		{"empty public name", vec16(echConfig(1, "", nil)), nil, ErrMalformed},
		{"short", []byte{0}, nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			err := ParseECHConfigList(tt.in, func(c ECHConfig) { names = append(names, string(c.PublicName)) })
			if err != tt.err {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err == nil && len(names) != len(tt.names) {
				t.Fatalf("names %q, want %q", names, tt.names)
			}
			for i := range tt.names {
				if names[i] != tt.names[i] {
					t.Fatalf("names %q, want %q", names, tt.names)
				}
			}
		})
	}
}

func FuzzParseECHConfigList(f *testing.F) {
	f.Add(vec16(echConfig(7, "a.example", nil)))
	f.Add(vec16(echConfig(7, "a.example", nil), be16(0xfe0a), vec16([]byte{1})))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseECHConfigList(b, func(c ECHConfig) {
			if c.Version == echVersion && (len(c.PublicName) == 0 || len(c.PublicName) > 255) {
				t.Fatalf("public name of %d bytes", len(c.PublicName))
			}
		})
	})
}
