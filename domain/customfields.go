package domain

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
)

// FieldEntity names what a custom field describes.
type FieldEntity string

// Entities that carry custom fields in their attributes.
const (
	EntityBooking  FieldEntity = "booking"
	EntityResource FieldEntity = "resource"
	EntityUser     FieldEntity = "user"
)

// FieldType is the type of a custom field's value.
type FieldType string

// Custom field types and the JSON values they accept: text a string, number
// a finite JSON number, boolean true/false, date a "YYYY-MM-DD" string, select
// a string equal to one of the field's options.
const (
	FieldText    FieldType = "text"
	FieldNumber  FieldType = "number"
	FieldBoolean FieldType = "boolean"
	FieldDate    FieldType = "date"
	FieldSelect  FieldType = "select"
)

// CustomField is a typed attribute a tenant defines for bookings, resources
// or users. Attributes maps are checked against the definitions of their
// entity: keys that no definition names are free attributes and pass
// unchecked, so tenants can store extra data without defining it first.
type CustomField struct {
	Entity   FieldEntity `json:"entity"`
	Key      string      `json:"key"`
	Label    string      `json:"label"`
	Type     FieldType   `json:"type"`
	Required bool        `json:"required"`
	Options  []string    `json:"options,omitempty"`
}

var fieldKeyPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// validateCustomFields checks definitions under path: known entity and type,
// a lower_snake key unique per entity, a label, and options that are given
// (non-empty, unique) exactly for select fields.
func validateCustomFields(v *ValidationError, path string, fields []CustomField) {
	seen := map[string]int{}
	for i, f := range fields {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch f.Entity {
		case EntityBooking, EntityResource, EntityUser:
		default:
			v.Addf(p+".entity", FieldInvalid, "must be booking, resource or user, got %q", f.Entity)
		}
		if !fieldKeyPattern.MatchString(f.Key) {
			v.Addf(p+".key", FieldInvalid, "must be 1-64 characters of a-z, 0-9 and _, starting with a letter, got %q", f.Key)
		} else if j, dup := seen[string(f.Entity)+"\x00"+f.Key]; dup {
			v.Addf(p+".key", FieldDuplicate, "key %q is already defined for %s by %s[%d]", f.Key, f.Entity, path, j)
		} else {
			seen[string(f.Entity)+"\x00"+f.Key] = i
		}
		if f.Label == "" {
			v.Add(p+".label", FieldRequired, "is required")
		} else if len(f.Label) > maxNameLen {
			v.Addf(p+".label", FieldTooLong, "must be at most %d bytes", maxNameLen)
		}
		switch f.Type {
		case FieldText, FieldNumber, FieldBoolean, FieldDate:
			if len(f.Options) > 0 {
				v.Addf(p+".options", FieldInvalid, "only select fields take options")
			}
		case FieldSelect:
			if len(f.Options) == 0 {
				v.Add(p+".options", FieldRequired, "a select field needs at least one option")
			}
			opts := map[string]bool{}
			for k, o := range f.Options {
				if o == "" {
					v.Add(fmt.Sprintf("%s.options[%d]", p, k), FieldRequired, "must not be empty")
				} else if opts[o] {
					v.Addf(fmt.Sprintf("%s.options[%d]", p, k), FieldDuplicate, "option %q is listed twice", o)
				}
				opts[o] = true
			}
		default:
			v.Addf(p+".type", FieldInvalid, "must be text, number, boolean, date or select, got %q", f.Type)
		}
	}
}

// ValidateAttributes checks attrs against the custom fields defined for
// entity and returns a *ValidationError naming each bad field as
// "attributes.<key>": a required field that is missing, null or an empty
// string; a value of the wrong JSON type; a date that is not YYYY-MM-DD; a
// select value that is not an option. Keys without a definition are free
// attributes and always pass. It is pure and safe for concurrent use.
func ValidateAttributes(entity FieldEntity, attrs map[string]any, fields []CustomField) error {
	var v ValidationError
	validateAttributes(&v, "attributes", entity, attrs, fields)
	return v.Err()
}

func validateAttributes(v *ValidationError, path string, entity FieldEntity, attrs map[string]any, fields []CustomField) {
	defs := make([]CustomField, 0, len(fields))
	for _, f := range fields {
		if f.Entity == entity {
			defs = append(defs, f)
		}
	}
	sort.SliceStable(defs, func(i, j int) bool { return defs[i].Key < defs[j].Key })
	for _, f := range defs {
		p := path + "." + f.Key
		val, present := attrs[f.Key]
		if !present || val == nil || val == "" {
			if f.Required {
				v.Addf(p, FieldRequired, "%s is required", f.Label)
			}
			continue
		}
		switch f.Type {
		case FieldText:
			if _, ok := val.(string); !ok {
				v.Addf(p, FieldTypeMismatch, "%s must be a text", f.Label)
			}
		case FieldNumber:
			if !isNumber(val) {
				v.Addf(p, FieldTypeMismatch, "%s must be a number", f.Label)
			}
		case FieldBoolean:
			if _, ok := val.(bool); !ok {
				v.Addf(p, FieldTypeMismatch, "%s must be true or false", f.Label)
			}
		case FieldDate:
			s, ok := val.(string)
			if !ok {
				v.Addf(p, FieldTypeMismatch, "%s must be a date YYYY-MM-DD", f.Label)
			} else if _, ok := parseDate(s); !ok {
				v.Addf(p, FieldInvalid, "%s must be a date YYYY-MM-DD, got %q", f.Label, s)
			}
		case FieldSelect:
			s, ok := val.(string)
			if !ok {
				v.Addf(p, FieldTypeMismatch, "%s must be one of the options", f.Label)
			} else if !slices.Contains(f.Options, s) {
				v.Addf(p, FieldUnknownOption, "%s: %q is not an option", f.Label, s)
			}
		}
	}
}

func isNumber(val any) bool {
	switch n := val.(type) {
	case float64:
		return !math.IsNaN(n) && !math.IsInf(n, 0)
	case float32:
		return !math.IsNaN(float64(n)) && !math.IsInf(float64(n), 0)
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return true
	case json.Number:
		_, err := n.Float64()
		return err == nil
	}
	return false
}

// cloneAttributes copies the top level of attrs; nil stays nil so events and
// views keep the distinction the client made. Values come from JSON and are
// never mutated in place.
func cloneAttributes(attrs map[string]any) map[string]any {
	if attrs == nil {
		return nil
	}
	out := make(map[string]any, len(attrs))
	for k, v := range attrs {
		out[k] = v
	}
	return out
}
