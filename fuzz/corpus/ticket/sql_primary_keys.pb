
Ctype.googleapis.com/arrow.flight.protocol.sql.CommandGetPrimaryKeys
dagrpublicpersons