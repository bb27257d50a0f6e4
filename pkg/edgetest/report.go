package edgetest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// ReportFormatVersion is the version of the JSON report; it changes only
// when a field changes meaning or disappears.
const ReportFormatVersion = 1

// Report is the result of a run: data that every renderer consumes.
type Report struct {
	FormatVersion int            `json:"formatVersion"`
	Suites        []*SuiteResult `json:"suites"`
	Summary       Summary        `json:"summary"`
	// Duration is how long the run took.
	Duration time.Duration `json:"-"`
}

// Summary counts the cases of a report.
type Summary struct {
	Total  int `json:"total"`
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

// OK reports whether every case that ran passed.
func (r *Report) OK() bool { return r.Summary.Failed == 0 }

// SuiteResult is the result of one suite.
type SuiteResult struct {
	Name string `json:"name"`
	// File is the suite's manifest file.
	File string `json:"file,omitempty"`
	// Target is the address of the edge the suite ran against.
	Target string `json:"target"`
	// InProcess is true for the in-process edge built from the manifests.
	InProcess bool          `json:"inProcess"`
	Passed    int           `json:"passed"`
	Failed    int           `json:"failed"`
	Cases     []*CaseResult `json:"cases"`
	Duration  time.Duration `json:"-"`
}

// CaseResult is the result of one case.
type CaseResult struct {
	Name string `json:"name"`
	// FullName is "suite/case", what Runner.Select matches.
	FullName string `json:"fullName"`
	Passed   bool   `json:"passed"`
	// Error says why the case could not run; it then failed.
	Error string `json:"error,omitempty"`
	// Failures are the expectations that did not hold.
	Failures []Failure `json:"failures,omitempty"`
	// Observed is what the case saw, when it ran.
	Observed *Observation  `json:"observed,omitempty"`
	Duration time.Duration `json:"-"`
}

// Messages returns why the case failed, one line each.
func (c *CaseResult) Messages() []string {
	var out []string
	if c.Error != "" {
		out = append(out, "error: "+c.Error)
	}
	for _, f := range c.Failures {
		out = append(out, f.String())
	}
	return out
}

func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Second)
}

// MarshalJSON adds the duration in seconds.
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		*plain
		Seconds float64 `json:"seconds"`
	}{(*plain)(r), seconds(r.Duration)})
}

// MarshalJSON adds the duration in seconds.
func (s *SuiteResult) MarshalJSON() ([]byte, error) {
	type plain SuiteResult
	return json.Marshal(struct {
		*plain
		Seconds float64 `json:"seconds"`
	}{(*plain)(s), seconds(s.Duration)})
}

// MarshalJSON adds the duration in seconds.
func (c *CaseResult) MarshalJSON() ([]byte, error) {
	type plain CaseResult
	return json.Marshal(struct {
		*plain
		Seconds float64 `json:"seconds"`
	}{(*plain)(c), seconds(c.Duration)})
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func shortDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// WriteCaseText writes one case as a text line, PASS or FAIL, its name and
// duration, then one indented line per failure.
func WriteCaseText(w io.Writer, c *CaseResult) {
	verdict := "PASS"
	if !c.Passed {
		verdict = "FAIL"
	}
	fmt.Fprintf(w, "%s  %s (%s)\n", verdict, c.FullName, shortDuration(c.Duration))
	for _, m := range c.Messages() {
		fmt.Fprintf(w, "      %s\n", m)
	}
}

// WriteSummaryText writes the summary line, such as "3 passed, 1 failed".
func WriteSummaryText(w io.Writer, r *Report) {
	fmt.Fprintf(w, "%d passed, %d failed (%s)\n", r.Summary.Passed, r.Summary.Failed, shortDuration(r.Duration))
}

// WriteText writes every case, then the summary.
func WriteText(w io.Writer, r *Report) {
	for _, s := range r.Suites {
		for _, c := range s.Cases {
			WriteCaseText(w, c)
		}
	}
	WriteSummaryText(w, r)
}

// JUnit XML, as read by CI systems (Jenkins, GitLab, GitHub actions).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Time       string          `xml:"time,attr"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func junitTime(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the report as JUnit XML: one testsuite per suite, one
// testcase per case; a case that could not run has an error, a case whose
// expectations did not hold a failure whose message is the first one and
// whose text lists them all.
func WriteJUnit(w io.Writer, r *Report) error {
	out := junitSuites{Name: "edgectl test", Time: junitTime(r.Duration)}
	for _, s := range r.Suites {
		js := junitSuite{Name: s.Name, Time: junitTime(s.Duration)}
		if s.File != "" {
			js.Properties = append(js.Properties, junitProperty{Name: "file", Value: s.File})
		}
		js.Properties = append(js.Properties, junitProperty{Name: "target", Value: s.Target})
		for _, c := range s.Cases {
			jc := junitCase{Name: c.Name, Classname: s.Name, Time: junitTime(c.Duration)}
			switch {
			case c.Error != "":
				jc.Error = &junitMessage{Message: c.Error, Type: "error", Text: c.Error}
				js.Errors++
			case len(c.Failures) > 0:
				msgs := c.Messages()
				jc.Failure = &junitMessage{Message: msgs[0], Type: "expectation", Text: strings.Join(msgs, "\n")}
				js.Failures++
			}
			js.Cases = append(js.Cases, jc)
			js.Tests++
		}
		out.Tests += js.Tests
		out.Failures += js.Failures
		out.Errors += js.Errors
		out.Suites = append(out.Suites, js)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
