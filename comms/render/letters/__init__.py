"""The parts of the PDF letter renderer (the public face is comms.render.letter):

    compose.py     templates -> HTML of one letter (sandboxed, compiled once per template version)
    engine.py      WeasyPrint once per process: fonts, stylesheets, image cache, stamps, time limits
    pdfwrite.py    one generated document of many letters -> one PDF/A-3b file per letter
    printbatch.py  the merged print file in postal order, duplex blanks, the print house's manifest
    fetcher.py     what a letter may load: data: URLs and media/ files only
    qr.py, epc.py  QR codes; the SEPA transfer payload (EPC069-12) for EUR customers
    paper.py       A4 or US Letter by country
    lint.py        `comms lint` for letters
"""
