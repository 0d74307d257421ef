
>type.googleapis.com/arrow.flight.protocol.sql.CommandGetTables
dagr%pers_n%"TABLE(