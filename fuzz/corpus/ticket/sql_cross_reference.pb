
Ftype.googleapis.com/arrow.flight.protocol.sql.CommandGetCrossReferencepersons2real_estate