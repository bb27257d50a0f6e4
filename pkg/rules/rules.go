package rules

// Limits of behavior arguments.
const (
	MaxHeaderArgument = 1600
	MaxCustomBody     = 500
)

// DefaultContentType is the content type of firewall responses that set none.
const DefaultContentType = "text/plain; charset=utf-8"

// reservedHeaders cannot be added or filtered by rules: the edge and the
// proxy own them (the last ones frame the message and would allow request
// smuggling). Keys are lowercase with '-'.
var reservedHeaders = map[string]bool{
	"host": true, "connection": true, "range": true, "x-forwarded-for": true, "cdn-loop": true,
	"content-length": true, "transfer-encoding": true, "te": true, "trailer": true,
	"upgrade": true, "keep-alive": true, "proxy-connection": true,
}
