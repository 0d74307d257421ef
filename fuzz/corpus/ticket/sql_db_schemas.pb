
Atype.googleapis.com/arrow.flight.protocol.sql.CommandGetDbSchemas
dagrpub%