
Btype.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery
SELECT email FROM persons