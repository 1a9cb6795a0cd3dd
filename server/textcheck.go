package server

import (
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// checkText walks an operation's input and refuses strings that no column
// should hold: invalid UTF-8, NUL and other control characters (tab and
// newline aside). Postgres refuses NUL in text, so without this check such
// input would surface as an internal error instead of a clear 422.
func checkText(v reflect.Value, loc string) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return checkText(v.Elem(), loc)
	case reflect.String:
		s := v.String()
		if !utf8.ValidString(s) {
			return invalid(loc, "not valid UTF-8", nil)
		}
		if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' }) >= 0 {
			return invalid(loc, "contains a control character", nil)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			sub := loc
			switch {
			case f.Anonymous:
			case f.Name == "Body" && loc == "":
				sub = "body"
			case f.Tag.Get("query") != "":
				sub = "query." + f.Tag.Get("query")
			case f.Tag.Get("path") != "":
				sub = "path." + f.Tag.Get("path")
			case f.Tag.Get("header") != "":
				sub = "header." + f.Tag.Get("header")
			case f.Tag.Get("json") != "":
				name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
				sub = loc + "." + name
			default:
				continue
			}
			if err := checkText(v.Field(i), sub); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if err := checkText(v.Index(i), loc); err != nil {
				return err
			}
		}
	}
	return nil
}
