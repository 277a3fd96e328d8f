// Package rules parses and validates vendor profiles (YAML) and compiles them into an immutable, allocation-free matcher for names, addresses and ports.
package rules
