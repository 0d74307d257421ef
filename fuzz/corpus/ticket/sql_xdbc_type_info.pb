
Dtype.googleapis.com/arrow.flight.protocol.sql.CommandGetXdbcTypeInfoÿÿÿÿÿÿÿÿÿ