process SCDEAL_TRANSFER {
    tag "${meta.id}:${meta.drug_key}"
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(cells, stageAs: '_inputs/cells/*'), path(bulk, stageAs: '_inputs/bulk/*'), path(model, stageAs: '_inputs/model/*')

    output:
    tuple val(meta), path("${prefix}/${meta.id}_${meta.drug_key}.h5ad"), emit: h5ad
    tuple val(meta), path("${prefix}/cell_model.pt")                   , emit: cell_model
    tuple val(meta), path("${prefix}/predictions.tsv")                 , emit: predictions
    path("${prefix}/{transfer_history.tsv,transfer_summary.json}")     , emit: results
    path("${prefix}/*.png")                                            , emit: figures
    path("${prefix}/*_mqc.*")                                          , emit: mqc
    path("versions.yml")                                               , emit: versions, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix   = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    def pretrained = model ? "--model ${model}" : ''
    """
    scdeal_transfer.py \\
        --cells ${cells} \\
        --bulk ${bulk} \\
        ${pretrained} \\
        --sample ${meta.id} \\
        --drug ${meta.drug_key} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        ${task.ext.flags} \\
        ${args}

    scdeal_versions.py "${task.process}" > versions.yml
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}/${meta.drug_key}"
    """
    mkdir -p ${prefix}
    touch ${prefix}/${meta.id}_${meta.drug_key}.h5ad ${prefix}/cell_model.pt ${prefix}/predictions.tsv ${prefix}/transfer_history.tsv ${prefix}/transfer_summary.json ${prefix}/${meta.id}_${meta.drug_key}_umap.png ${prefix}/${meta.id}_${meta.drug_key}_general_mqc.tsv
    scdeal_versions.py "${task.process}" > versions.yml
    """
}
