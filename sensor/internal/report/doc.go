// Package report renders the compliance report: the inventoried hosts,
// each classified against its removal deadline (see Status), as an aligned
// text table, CSV, JSON (the `report --format json` contract of DESIGN.md)
// or one self-contained HTML file.
//
// Names, hostnames and other strings in the inventory were seen on the
// wire or read from an asset file: they are attacker-controlled. Every
// writer escapes them for its format: html/template for HTML (and a
// Content-Security-Policy that forbids every external load), encoding/json
// with HTML escaping for JSON, encoding/csv plus neutralised control bytes
// and spreadsheet formulas for CSV, and control bytes written as \xHH for
// the terminal.
//
// The report does no I/O of its own beyond the writer it is given, and
// takes its clock from Options.Now, so that the same inventory and the
// same Now give the same bytes.
package report
