"""What review prints and exports: PDFs with an embedded Chinese font (ReportLab), spreadsheets
(xlsxwriter). Pure functions from facts to bytes; the HTTP handlers and activities call them."""
