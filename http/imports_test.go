package http_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportsPointInward keeps the adapter on the outside: it may import the
// domain and the command and query use cases, never another adapter (the
// event store, the projections) or the binaries that wire them. Only direct
// imports are checked: what the use cases depend on is their business.
func TestImportsPointInward(t *testing.T) {
	t.Parallel()
	const module = "github.com/bookingengine/booking"
	allowed := []string{module + "/http", module + "/domain", module + "/commands", module + "/queries"}
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, module+"/http").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		if dep != module && !strings.HasPrefix(dep, module+"/") {
			continue
		}
		ok := false
		for _, a := range allowed {
			ok = ok || dep == a || strings.HasPrefix(dep, a+"/")
		}
		require.True(t, ok, "package http must not depend on %s", dep)
	}
}
