package queries_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestImportsPointInward keeps the read side's use cases free of
// adapters: package queries may depend on the domain only, never on the
// event store, the projections, the commands or the HTTP layer.
func TestImportsPointInward(t *testing.T) {
	t.Parallel()
	const module = "github.com/bookingengine/booking"
	out, err := exec.Command("go", "list", "-deps", module+"/queries").Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		if dep == module || !strings.HasPrefix(dep, module+"/") {
			continue
		}
		require.Contains(t, []string{module + "/queries", module + "/domain"}, dep, "package queries must not depend on %s", dep)
	}
}
