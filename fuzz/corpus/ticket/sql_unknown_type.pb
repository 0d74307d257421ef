
type.googleapis.com/nope.Nope
abc