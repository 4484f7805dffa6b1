package result_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/regblock/regblock/plugin/pkg/result"
)

func TestOf(t *testing.T) {
	rollback := result.New(result.Rollback, "rollback")
	for _, tc := range []struct {
		err  error
		want result.Result
	}{
		{result.Errorf(result.TooLarge, "a.list: larger than the size limit"), result.TooLarge},
		{fmt.Errorf("a.list: %w: serial 1 is not newer", rollback), result.Rollback},
		// The outermost result says what became of the version.
		{result.Errorf(result.ParseError, "a.list: %w", rollback), result.ParseError},
		{errors.New("a.list: permission denied"), result.IOError},
	} {
		if got := result.Of(tc.err); got != tc.want {
			t.Errorf("Of(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	if err := fmt.Errorf("x: %w", rollback); !errors.Is(err, rollback) || err.Error() != "x: rollback" {
		t.Errorf("a wrapped sentinel: %v", err)
	}
}
