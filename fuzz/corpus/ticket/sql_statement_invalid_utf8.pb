
Btype.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery
SELECT 'ÿþ' FROM persons