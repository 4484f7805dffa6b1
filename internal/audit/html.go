package audit

import (
	"bytes"
	"html/template"
	"time"

	"github.com/regblock/regblock/plugin/pkg/atomicfile"
)

// reportPage is the HTML audit report: one self-contained file, no external
// resources, for an auditor to file.
var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"time": func(t time.Time) string { return t.Format(time.RFC3339) },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>regblock audit of {{.Resolver}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #1a1a1a; }
table { border-collapse: collapse; width: 100%; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: .3em .5em; text-align: left; vertical-align: top; }
th { background: #eee; }
.ok { color: #11611a; } .bad { color: #a0001c; }
code { font-size: .95em; word-break: break-all; }
</style>
</head>
<body>
<h1>regblock audit of {{.Resolver}}</h1>
<p class="{{if .Compliant}}ok{{else}}bad{{end}}"><strong>{{if .Compliant}}Compliant{{else}}Not compliant{{end}}</strong>:
{{printf "%.1f" .Compliance}}% of {{len .Probes}} queries answered as the lists require ({{.Passed}} as expected).</p>
<table>
<tr><th>Resolver</th><td>{{.Resolver}} ({{.Transport}})</td></tr>
<tr><th>Audited</th><td>{{time .Started}} to {{time .Finished}}</td></tr>
<tr><th>Mode</th><td>{{.Mode}}{{if .Sample}}, a sample of {{.Sample}} entries a list{{end}}, seed {{.Seed}}</td></tr>
<tr><th>Expected block answer</th><td>{{if .Notice}}{{range .Notice}}<code>{{.}}</code> {{end}}{{else}}any answer with an Extended DNS Error Blocked, Censored or Filtered{{end}}</td></tr>
{{range .Lists}}<tr><th>List</th><td>{{.Name}} serial {{.Serial}}{{if .Issuer}}, issued by {{.Issuer}}{{end}} (<code>{{.File}}</code>)</td></tr>
{{end}}</table>
<h2>Answers</h2>
<table>
<tr><th>blocked as expected</th><th>blocked otherwise</th><th>not blocked</th><th>errors</th></tr>
<tr><td>{{index .Counts "blocked"}}</td><td>{{index .Counts "blocked-other"}}</td><td>{{index .Counts "not-blocked"}}</td><td>{{index .Counts "error"}}</td></tr>
</table>
<h2>Failures</h2>
{{if .Compliant}}<p>None.</p>{{else}}<table>
<tr><th>Name</th><th>Type</th><th>Expected</th><th>Got</th><th>Answer</th><th>Why expected</th></tr>
{{range .Probes}}{{if not .Pass}}<tr><td><code>{{.Name}}</code></td><td>{{.Type}}</td><td>{{.Expect}}</td><td>{{.Got}}</td><td><code>{{.Detail}}</code></td><td>{{.Why}}</td></tr>
{{end}}{{end}}</table>{{end}}
<p>Made by <code>regblock audit</code>. Every name here is from a signed list or generated for this audit.</p>
</body>
</html>
`))

// WriteHTML writes the report as a self-contained HTML page to path.
func (r *Report) WriteHTML(path string) error {
	var b bytes.Buffer
	if err := reportPage.Execute(&b, r); err != nil {
		return err
	}
	return atomicfile.Write(path, b.Bytes(), 0o644)
}
