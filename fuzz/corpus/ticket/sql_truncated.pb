
Btype.googleapis.com/arrow.flight.protocol.sql.TicketStatementQuery

SELEC