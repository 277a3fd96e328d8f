// Package rules parses and validates vendor profiles (YAML) and compiles them into an immutable, allocation-free matcher for names, addresses, ports, AS numbers, countries, JA4 fingerprints and User-Agents, alone or in combined conditions.
package rules
