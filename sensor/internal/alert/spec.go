package alert

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Spec is a parsed --output SPEC: `ecs:PATH`, `eve:PATH` (PATH "-" is
// stdout), or a URL whose scheme names the sink: `syslog+udp://HOST:PORT`,
// `syslog+tcp://…`, `syslog+tls://…`, `kafka://BROKER[,BROKER]/TOPIC`,
// `alertmanager+http://HOST:PORT`, `alertmanager+https://…`,
// `webhook+https://…` (`webhook+http://` too).
//
// Options common to every sink go in the query string and are removed
// from Query before the sink sees it; anything left is the sink's own,
// and a sink must refuse what it does not know:
//
//	observations=P  share of observations sent besides alerts (0–1; "all" = 1)
//	alerts=false    no alerts (an observations-only output)
//	queue=N batch=N linger=DUR retries=N retry-max=DUR
//
// File paths may carry the same query: `ecs:/var/log/x.json?observations=1`.
type Spec struct {
	Raw    string     // as given: may hold a password (user:pass@); errors show Safe
	Safe   string     // Raw with any password replaced by xxxxx
	Scheme string     // ecs, eve, syslog+udp, kafka, …
	Path   string     // ecs and eve: the file ("-": stdout)
	URL    *url.URL   // the other sinks; its RawQuery holds the sink's own options
	Query  url.Values // the sink's own options
	Config OutputConfig
}

// ParseSpec parses one --output value.
func ParseSpec(raw string) (*Spec, error) {
	s := &Spec{Raw: raw, Safe: redact(raw)}
	rest := raw
	var query string
	scheme, after, ok := strings.Cut(raw, ":")
	if !ok || scheme == "" {
		return nil, fmt.Errorf("--output %q: want SCHEME:…, e.g. ecs:PATH or syslog+tcp://HOST:PORT", s.Safe)
	}
	s.Scheme = strings.ToLower(scheme)
	switch s.Scheme {
	case "ecs", "eve":
		rest, query, _ = strings.Cut(after, "?")
		if rest == "" {
			rest = "-"
		}
		s.Path = rest
		s.Config.Name = s.Scheme + ":" + rest
	default:
		// kafka://b1:9092,b2:9092/topic: net/url takes one host only, so
		// the list is parsed with its first host and put back after.
		toParse, hosts := raw, ""
		if _, rest, ok := strings.Cut(raw, "://"); ok {
			auth, _, _ := strings.Cut(rest, "/")
			auth, _, _ = strings.Cut(auth, "?")
			if i := strings.LastIndexByte(auth, '@'); i >= 0 {
				auth = auth[i+1:]
			}
			if first, _, list := strings.Cut(auth, ","); list {
				hosts = auth
				toParse = strings.Replace(raw, auth, first, 1)
			}
		}
		u, err := url.Parse(toParse)
		if err != nil {
			return nil, fmt.Errorf("--output %q: %w", s.Safe, redactErr(err, raw))
		}
		if hosts != "" {
			u.Host = hosts
		}
		if u.Host == "" {
			return nil, fmt.Errorf("--output %q: no host", s.Safe)
		}
		s.URL = u
		query = u.RawQuery
		// The name shows where events go, never credentials nor options.
		s.Config.Name = s.Scheme + "://" + u.Host + u.EscapedPath()
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("--output %q: options: %w", s.Safe, err)
	}
	s.Config.Alerts = true
	for key, vals := range q {
		v := vals[len(vals)-1]
		var err error
		switch key {
		case "observations":
			if v == "all" {
				s.Config.Observations = 1
				break
			}
			s.Config.Observations, err = strconv.ParseFloat(v, 64)
			if err == nil && (s.Config.Observations < 0 || s.Config.Observations > 1) {
				err = fmt.Errorf("not between 0 and 1")
			}
		case "alerts":
			s.Config.Alerts, err = strconv.ParseBool(v)
		case "queue":
			s.Config.Queue, err = positive(v)
		case "batch":
			s.Config.Batch, err = positive(v)
		case "retries":
			s.Config.MaxRetries, err = strconv.Atoi(v)
			if err == nil && s.Config.MaxRetries == 0 {
				s.Config.MaxRetries = -1 // 0 means none, not the default
			}
		case "linger":
			s.Config.Linger, err = time.ParseDuration(v)
		case "retry-max":
			s.Config.RetryMax, err = time.ParseDuration(v)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("--output %q: option %s=%q: %w", s.Safe, key, v, err)
		}
		q.Del(key)
	}
	if !s.Config.Alerts && s.Config.Observations == 0 {
		return nil, fmt.Errorf("--output %q: alerts=false and no observations: nothing to send", s.Safe)
	}
	s.Query = q
	if s.URL != nil {
		s.URL.RawQuery = q.Encode()
	}
	return s, nil
}

// Unknown returns an error naming the options left in the query that the
// sink does not take, or nil.
func (s *Spec) Unknown(known ...string) error {
	for key := range s.Query {
		found := false
		for _, k := range known {
			found = found || k == key
		}
		if !found {
			own := strings.Join(known, ", ")
			if own == "" {
				own = "none"
			}
			return fmt.Errorf("--output %q: unknown option %q (common options: observations, alerts, queue, batch, linger, retries, retry-max; %s options: %s)",
				s.Safe, key, s.Scheme, own)
		}
	}
	return nil
}

func positive(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err == nil && n <= 0 {
		err = fmt.Errorf("must be positive")
	}
	return n, err
}

// password returns the PASS of SCHEME://USER:PASS@HOST…, or "".
func password(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return ""
	}
	_, pass, _ := strings.Cut(rest[:at], ":")
	return pass
}

// redact replaces the password of SCHEME://USER:PASS@HOST… with xxxxx.
func redact(raw string) string {
	if pass := password(raw); pass != "" {
		return strings.Replace(raw, ":"+pass+"@", ":xxxxx@", 1)
	}
	return raw
}

// redactErr keeps net/url's errors, which quote the URL, from showing a
// password.
func redactErr(err error, raw string) error {
	if pass := password(raw); pass != "" && strings.Contains(err.Error(), pass) {
		return errors.New(strings.ReplaceAll(err.Error(), pass, "xxxxx"))
	}
	return err
}
