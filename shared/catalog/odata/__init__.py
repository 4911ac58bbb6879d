"""The PRIP / CSC OData v4 API of the catalog: ``$filter`` grammar and translation, query options,
entity JSON and CSDL, downloads and bearer-token access control (``service.ODataService``)."""
